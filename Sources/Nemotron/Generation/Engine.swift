import Foundation

/// A loaded model ready to run on this rank: the effective settings, the parallelism, the
/// model, its workspace and tokenizer. What every command builds first.
public final class Engine {
    public let settings: RunConfig
    public let model: NemotronH
    public let workspace: Workspace
    /// What the run header says when the compute threads and this process's CPUs disagree
    /// (`CPUAffinity.placementNote`), or nil.
    public let placementNote: String?
    /// The checkpoint's tokenizer, or nil when it has no tokenizer.json.
    public let tokenizer: Tokenizer?

    /// Loads on every rank and agrees on success first: a failure on any rank (a bad file, an
    /// illegal tensor-parallel size) makes every rank throw, and only rank 0 reports it.
    public static func load(settings: RunConfig, world: Communicator, progress: (Int, Int) -> Void = { _, _ in }) throws
        -> Engine
    {
        try world.agreeing { try Engine(settings: settings, world: world, progress: progress) }
    }

    public init(settings: RunConfig, world: Communicator, progress: (Int, Int) -> Void = { _, _ in }) throws {
        let size = settings.tensorParallelSize
        if size != 0 && size != world.size {
            throw NemotronError.parallel(
                reason: "tensor_parallel_size is \(size) but \(world.size) process(es) are running; "
                    + "start with `mpirun -np \(size)` or drop the key (the MPI world size is the tensor-parallel size)"
            )
        }
        guard !settings.model.isEmpty else {
            throw NemotronError.invalidArgument(
                name: "model", value: "(none)",
                expected: "a checkpoint directory: pass --model DIR or set 'model' in the config file")
        }
        self.settings = settings
        let parallelism = Parallelism(
            world: world, mode: settings.enableAttentionDP ? .attentionDataParallel : .tensorParallel,
            fuse: settings.fuseAllReduceNorm)
        let directory = URL(fileURLWithPath: settings.model)
        model = try NemotronH(
            directory: directory, parallelism: parallelism, compute: ComputePolicy(),
            quantize: settings.quantize.format, progress: progress)
        model.compute = ComputePolicy.resolving(settings.computeDType, formats: model.heldFormats)
        let (allowed, online) = (CPUAffinity.allowedCount, CPUAffinity.onlineCount)
        let localRanks = CPUAffinity.localRanks(worldSize: world.size)
        let threads =
            settings.threads > 0
            ? settings.threads
            : CPUAffinity.automaticThreads(allowed: allowed, online: online, localRanks: localRanks)
        placementNote = CPUAffinity.placementNote(
            threads: threads, automatic: settings.threads == 0, allowed: allowed, online: online,
            localRanks: localRanks)
        workspace = Workspace(threads: threads)
        if let failure = workspace.pool.startFailure { throw failure }
        let hasTokenizer = FileManager.default.fileExists(
            atPath: directory.appendingPathComponent("tokenizer.json").path)
        tokenizer = hasTokenizer ? try Tokenizer(directory: directory) : nil
    }

    public var config: ModelConfig { model.config }
    public var parallelism: Parallelism { model.parallelism }
    public var world: Communicator { model.parallelism.world }
    public var threads: Int { workspace.threads }
    /// The ids that end a request, sorted: the `eos_token_id`s of config.json and
    /// generation_config.json (`ModelConfig.eosTokenIds`) and the tokenizer's `eos_token` from
    /// tokenizer_config.json (chat checkpoints end turns on it, and it may be missing from both).
    public var stopTokenIds: [Int] { Set(model.config.eosTokenIds + (tokenizer?.eosIds ?? [])).sorted() }
    public var stopIds: Set<Int> { Set(stopTokenIds) }

    /// A scheduler for one run's requests; `ignoreEOS` lets requests run to their budget.
    public func makeScheduler(ignoreEOS: Bool = false) -> Scheduler {
        Scheduler(
            model: model, workspace: workspace, tokenizer: tokenizer, stopIds: ignoreEOS ? [] : stopIds,
            prefillChunk: settings.prefillChunk, maxBatchSize: settings.maxBatchSize,
            maxNumTokens: settings.maxNumTokens)
    }

    /// Runs `requests` to the end (see `Scheduler.run`); `prefillProgress(done, total)` follows
    /// the prompt tokens read after each step while prompts are being read.
    public func generate(
        _ requests: [Request], ignoreEOS: Bool = false, onEvent: (GenerationEvent) -> Void = { _ in },
        prefillProgress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [Generation] {
        let scheduler = makeScheduler(ignoreEOS: ignoreEOS)
        for request in requests { try scheduler.submit(request) }
        while let events = scheduler.step() {
            prefillProgress(scheduler.prefillProgress.done, scheduler.prefillProgress.total)
            // A request whose logits were not finite got no real token: its placeholder is not shown.
            let failed = Set(
                events.compactMap {
                    if case .finished(let id, let result) = $0, result.finishReason == .nonFiniteLogits {
                        id
                    } else {
                        nil
                    }
                })
            for event in events {
                if case .token(let id, _, _) = event, failed.contains(id) { continue }
                onEvent(event)
            }
        }
        let results = scheduler.results()
        // Every rank learns of non-finite logits (rank 0 holds every result under attention DP).
        try world.agreeing {
            if let (prompt, result) = results.enumerated().first(where: { $1.finishReason == .nonFiniteLogits }) {
                throw NemotronError.nonFiniteLogits(prompt: prompt, token: result.ids.count - 1)
            }
        }
        return results
    }

    /// One line describing how this run is parallelised, for run headers and `inspect`.
    public var parallelismDescription: String {
        let p = parallelism
        let mode =
            p.mode == .attentionDataParallel
            ? "attention data parallel (requests split over ranks, experts split)" : "tensor parallel"
        return
            "\(world.size) rank(s) × \(threads) thread(s), \(mode); fuse_allreduce_norm "
            + "\(p.fusedAllReduceNorm ? "on" : "off") (\(p.fusionReason)); "
            + "allreduce_strategy \(settings.allReduceStrategy.rawValue); compute \(model.compute.description)"
    }

    /// How the weights are held, for run headers and `bench`: the formats of the linear weights
    /// (stored, or quantized on load) and the bytes this rank holds.
    public var weightsDescription: String {
        let held = model.heldWeights
        var formats = Set(held.layers.flatMap { $0.matrices.map(\.format) })
        formats.insert(held.lmHead.format)
        let how: String
        if let stored = config.quantization {
            how = "quantized checkpoint, \(stored.method.rawValue) \(stored.algorithm)"
        } else if let format = settings.quantize.format {
            how = "quantized to \(format) on load"
        } else {
            how = "as stored"
        }
        return "\(formats.map(\.rawValue).sorted().joined(separator: ", ")) (\(how)); "
            + String(format: "%.3f GB of matrices held on this rank", Double(model.localWeightBytes) / 1e9)
    }

    /// Every prompt of the run as token ids (text prompts tokenized, with BOS when the
    /// tokenizer config asks for it), with its text when it was given as text.
    public func prompts() throws -> [(text: String?, ids: [Int])] {
        if settings.chat { return try chatPrompts() }
        let prompts = settings.allPrompts
        guard !prompts.isEmpty else {
            throw NemotronError.invalidArgument(
                name: "prompt", value: "(none)",
                expected: "--prompt TEXT, --prompt-file FILE, --tokens IDS, or 'prompts'/'tokens' in the config file")
        }
        let validator = makeScheduler()
        return try prompts.map { prompt in
            switch prompt {
            case .tokens(let ids):
                try validator.validate(ids)
                return (nil, ids)
            case .text(let text):
                guard let tokenizer else {
                    throw NemotronError.fileMissing(
                        path: URL(fileURLWithPath: settings.model).appendingPathComponent("tokenizer.json").path,
                        what: "the checkpoint's tokenizer, needed for text prompts (or give --tokens)")
                }
                let ids = tokenizer.encodePrompt(text)
                try validator.validate(ids)
                return (text, ids)
            }
        }
    }

    /// Chat prompts: each text prompt as one user turn (after the system turn, if any), and the
    /// conversation of the `messages` file, rendered through the checkpoint's chat template with
    /// the generation prompt and tokenized without adding special tokens again, as
    /// `apply_chat_template(..., tokenize=True)` does.
    private func chatPrompts() throws -> [(text: String?, ids: [Int])] {
        let directory = URL(fileURLWithPath: settings.model)
        guard let tokenizer else {
            throw NemotronError.fileMissing(
                path: directory.appendingPathComponent("tokenizer.json").path,
                what: "the checkpoint's tokenizer, needed for chat")
        }
        if settings.allPrompts.contains(where: { if case .tokens = $0 { return true } else { return false } }) {
            throw NemotronError.invalidArgument(
                name: "--chat", value: "with token-id prompts",
                expected: "text prompts (--prompt) or --messages FILE.json")
        }
        let template = try ChatTemplate.load(directory: directory)
        let kwargs =
            settings.chatTemplateKwargs.isEmpty
            ? [:]
            : try ChatTemplate.keywordArguments(fromJSON: settings.chatTemplateKwargs, source: "chat_template_kwargs")
        var conversations: [[JinjaValue]] = settings.prompts.compactMap { prompt in
            guard case .text(let text) = prompt else { return nil }
            let system: [JinjaValue] =
                settings.system.isEmpty ? [] : [.dict([("role", "system"), ("content", .string(settings.system))])]
            return system + [.dict([("role", "user"), ("content", .string(text))])]
        }
        if !settings.messages.isEmpty {
            guard let data = FileManager.default.contents(atPath: settings.messages) else {
                throw NemotronError.fileMissing(path: settings.messages, what: "a JSON list of chat messages")
            }
            conversations.append(
                try ChatTemplate.messages(fromJSON: String(decoding: data, as: UTF8.self), source: settings.messages))
        }
        guard !conversations.isEmpty else {
            throw NemotronError.invalidArgument(
                name: "--chat", value: "(no prompt)", expected: "--prompt TEXT (one user turn) or --messages FILE.json")
        }
        let validator = makeScheduler()
        return try conversations.map { messages in
            let text = try template.render(messages: messages, addGenerationPrompt: true, kwargs: kwargs)
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            try validator.validate(ids)
            return (text, ids)
        }
    }
}
