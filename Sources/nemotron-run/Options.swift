import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

/// Options every command takes: the run config file, the model and thread count.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "YAML run config; flags override its keys.")
    var config: String?

    @Option(name: .long, help: "Checkpoint directory (config.json, *.safetensors).")
    var model: String?

    @Option(name: .long, help: "Compute threads per process (default: cores / processes).")
    var threads: Int?

    @Option(name: .long, help: "Fuse each layer's AllReduce with the residual add and next RMSNorm: auto, on or off.")
    var fuseAllreduceNorm: String?

    @Option(name: .long, help: "Reduction strategy: mpi, oneshot, twoshot, ring or auto.")
    var allreduceStrategy: String?

    @Option(name: .long, help: "Prompt tokens per sequence in one prefill pass (default 512); smaller bounds memory.")
    var prefillChunk: Int?

    @Flag(name: .long, help: "Attention data parallelism: each rank serves its own prompts; MoE experts are split over the ranks.")
    var attentionDp = false

    @Option(name: .customLong("compute-dtype"), help: "Prefill precision for bf16 weights: f32 (exact, default) or bf16 (faster on AVX512-BF16 CPUs).")
    var computeDType: String?

    /// The config file's settings with these flags applied, range-checked.
    func settings(_ overrides: RunConfig = RunConfig()) throws -> RunConfig {
        var flags = overrides
        flags.model = model.map { URL(fileURLWithPath: $0).standardized.path }
        flags.threads = threads
        flags.computeDType = try computeDType.map { try RunConfig.choice($0, key: "compute_dtype", source: "command line") }
        flags.fuseAllReduceNorm = try fuseAllreduceNorm.map { try RunConfig.choice($0, key: "fuse_allreduce_norm", source: "command line") }
        flags.enableAttentionDP = attentionDp ? true : nil
        flags.prefillChunk = prefillChunk
        flags.allReduceStrategy = try allreduceStrategy.map { try RunConfig.choice($0, key: "allreduce_strategy", source: "command line") }
        try flags.validate(path: "command line")
        let file = try config.map { try RunConfig(path: $0) } ?? RunConfig()
        return file.overridden(by: flags)
    }
}

/// Loads the engine on every rank after selecting the reduction strategy (both collective).
func loadEngine(_ settings: RunConfig) throws -> Engine {
    let world = MPICommunicator.world
    try world.agreeing { try world.use(settings.allReduceStrategy ?? .auto) }
    let bar = ProgressBar(label: "loading \(URL(fileURLWithPath: settings.model ?? "").lastPathComponent)")
    let engine = try Engine.load(settings: settings, communicator: world) { bar.update($0, of: $1) }
    bar.clear()
    Report.note("nemotron-run: \(engine.parallelismDescription)")
    return engine
}

/// The prompt as token ids.
struct TokenOptions: ParsableArguments {
    @Option(name: .long, help: "Prompt token ids, comma-separated (e.g. 1,2,3).")
    var tokens: String?

    func parsed() throws -> [Int]? {
        guard let tokens else { return nil }
        let parts = tokens.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        if parts == [""] { return [] }
        return try parts.map {
            guard let id = Int($0) else {
                throw NemotronError.invalidArgument(name: "--tokens", value: "'\($0)'", expected: "comma-separated integer token ids")
            }
            return id
        }
    }
}

/// Generation length and sampling.
struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: "Maximum tokens to generate (default 32).")
    var maxNewTokens: Int?

    @Option(name: .long, help: "Sampling temperature; 0 is greedy (default 0).")
    var temperature: Double?

    @Option(name: .long, help: "Keep only the k most likely tokens; 0 is off.")
    var topK: Int?

    @Option(name: .long, help: "Keep the smallest set of tokens with this total probability; 1 is off.")
    var topP: Double?

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: Int?

    func apply(to settings: inout RunConfig) {
        settings.maxNewTokens = maxNewTokens
        settings.temperature = temperature
        settings.topK = topK
        settings.topP = topP
        settings.seed = seed
    }
}
