import Foundation

/// A loaded model ready to run on this rank: the effective run settings, the model, its
/// workspace and generator. What every command builds first.
public final class Engine {
    public let settings: RunConfig
    public let model: NemotronH
    public let generator: Generator
    public let communicator: Communicator
    public let threads: Int

    /// Loads on every rank and agrees on success first: a failure on any rank (a bad file, an
    /// illegal tensor-parallel size) makes every rank throw, and only rank 0 reports it.
    public static func load(settings: RunConfig, communicator: Communicator, progress: (Int, Int) -> Void = { _, _ in }) throws -> Engine {
        try communicator.agreeing { try Engine(settings: settings, communicator: communicator, progress: progress) }
    }

    public init(settings: RunConfig, communicator: Communicator, progress: (Int, Int) -> Void = { _, _ in }) throws {
        if let size = settings.tensorParallelSize, size != communicator.size {
            throw NemotronError.parallel(reason: "tensor_parallel_size is \(size) but \(communicator.size) process(es) are running; "
                + "start with `mpirun -np \(size)` or drop the key (the MPI world size is the tensor-parallel size)")
        }
        guard let path = settings.model else {
            throw NemotronError.invalidArgument(name: "model", value: "(none)", expected: "a checkpoint directory: pass --model DIR or set 'model' in the config file")
        }
        self.settings = settings
        self.communicator = communicator
        threads = settings.threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / communicator.size)
        model = try NemotronH(directory: URL(fileURLWithPath: path), tpSize: communicator.size, rank: communicator.rank,
                              attentionDataParallel: settings.enableAttentionDP ?? false, progress: progress)
        let workspace = Workspace(threads: threads)
        workspace.computeDType = settings.computeDType ?? .f32
        generator = Generator(model: model, workspace: workspace, communicator: communicator)
        generator.fusedAllReduceNorm = fusion.enabled
        generator.prefillChunk = settings.prefillChunk ?? generator.prefillChunk
    }

    public var config: ModelConfig { model.config }

    /// Whether the layer-shifted AllReduce + residual + RMSNorm fusion is in effect, and why.
    public var fusion: (enabled: Bool, reason: String) {
        (settings.fuseAllReduceNorm ?? .auto).resolve(tpSize: communicator.size, attentionDataParallel: settings.enableAttentionDP ?? false)
    }

    /// One line describing how this run is parallelised, for run headers and `inspect`.
    public var parallelismDescription: String {
        let fusion = self.fusion
        let mode = model.plan.attentionDataParallel ? "attention data parallel (requests round-robin over ranks, experts split)" : "tensor parallel"
        return "\(communicator.size) rank(s) × \(threads) thread(s), \(mode); fuse_allreduce_norm \(fusion.enabled ? "on" : "off") (\(fusion.reason)); "
            + "allreduce_strategy \(settings.allReduceStrategy ?? .auto); compute \(computeDTypeDescription)"
    }

    /// The prefill precision in effect and why, for run headers.
    public var computeDTypeDescription: String {
        let asked = settings.computeDType ?? .f32
        if asked == .bf16 && !MatMul.hasBF16Dot { return "f32 (bf16 asked, but this CPU lacks AVX512-BF16)" }
        return asked.rawValue
    }
    public var stopIds: Set<Int> { Set(model.config.eosTokenIds) }

    /// The prompt from the settings, checked against the vocabulary.
    public func promptTokens() throws -> [Int] {
        let tokens = settings.tokens ?? []
        try generator.validate(tokens)
        return tokens
    }

    /// The checkpoint's tokenizer, or nil when it has no tokenizer.json.
    public func tokenizer() throws -> Tokenizer? {
        let directory = URL(fileURLWithPath: settings.model ?? ".")
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) else { return nil }
        return try Tokenizer(directory: directory)
    }

    /// Every prompt of the run as token ids (text prompts tokenized, with BOS when the
    /// tokenizer config asks for it), with its text when it was given as text.
    public func prompts(tokenizer: Tokenizer?) throws -> [(text: String?, ids: [Int])] {
        let prompts = settings.prompts ?? settings.tokens.map { [Prompt.tokens($0)] } ?? []
        guard !prompts.isEmpty else {
            throw NemotronError.invalidArgument(name: "prompt", value: "(none)",
                                                expected: "--prompt TEXT, --prompt-file FILE, --tokens IDS, or 'prompts'/'tokens' in the config file")
        }
        return try prompts.map { prompt in
            switch prompt {
            case .tokens(let ids):
                try generator.validate(ids)
                return (nil, ids)
            case .text(let text):
                guard let tokenizer else {
                    throw NemotronError.fileMissing(path: URL(fileURLWithPath: settings.model ?? ".").appendingPathComponent("tokenizer.json").path,
                                                    what: "the checkpoint's tokenizer, needed for text prompts (or give --tokens)")
                }
                let ids = tokenizer.encodePrompt(text)
                try generator.validate(ids)
                return (text, ids)
            }
        }
    }
}
