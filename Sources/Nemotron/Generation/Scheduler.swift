import Foundation

/// Runs requests step by step: `submit` queues a request, each `step()` admits waiting
/// requests, runs one forward pass and retires finished requests, and reports per-request
/// events (token, finish). One loop serves tensor parallelism and attention data parallelism;
/// they differ only in who decides tokens:
/// - tensor parallel: every rank holds every request and runs the same batch; rank 0 samples
///   and decides who finished, and broadcasts both.
/// - attention data parallel: request i is served by rank i mod ranks, which decides its
///   tokens itself. With MoE layers (whose expert exchange needs every rank in every pass)
///   ranks step together until all are done, a rank without work running empty passes.
///
/// Continuous batching: requests join the running batch at step boundaries, up to
/// `maxBatchSize` running at once (the rest wait, oldest first). Each pass holds one decode row
/// for every running request whose prompt is done, then prefill chunks of the requests still
/// reading their prompt, in admission order: at most `prefillChunk` tokens per request and
/// `maxNumTokens` tokens in the whole pass (decode rows first, so running streams keep
/// flowing while new prompts are read). Each request has its own sampler and state, so with
/// f32 compute its tokens equal those of running it alone.
public final class Scheduler {
    public let model: NemotronH
    public let workspace: Workspace
    /// Prompt tokens per request in one pass; longer prompts take several (the Mamba and KV
    /// state carry over), which bounds the workspace's activation memory.
    public let prefillChunk: Int
    /// Requests running at once on this rank (0: no limit); the others wait for a free place.
    public let maxBatchSize: Int
    /// Tokens in one forward pass, decode rows and prefill chunks together (0: no limit).
    public let maxNumTokens: Int
    private let tokenizer: Tokenizer?
    private let stopIds: Set<Int>
    private let collectives: StepCollectives
    private let lockstep: Bool

    /// Every submitted request not yet released, by id (the same ids on every rank).
    private var requests: [Int: Request] = [:]
    /// The id the next submitted request gets.
    public private(set) var nextID = 0
    /// Submitted here and not yet admitted, oldest first.
    private var waiting: [Int] = []
    /// Admitted and not finished, in admission order.
    private var active: [Running] = []
    /// Finished on this rank.
    private var finished: [Int: Generation] = [:]

    /// One admitted request's state on this rank.
    private final class Running {
        let id: Int
        let request: Request
        let sequence: SequenceState
        var sampler: Sampler
        var generation: Generation
        /// Prompt tokens fed so far.
        var consumed = 0
        /// Decode passes this request took part in.
        var decodePasses = 0
        /// On ranks that decide tokens, with a tokenizer.
        var text: TextStream?
        /// The text the latest decided token released, reported by `record`.
        var released = ""

        init(id: Int, request: Request, sequence: SequenceState, text: TextStream?) {
            self.id = id
            self.request = request
            self.sequence = sequence
            sampler = Sampler(request.sampling)
            generation = Generation(promptTokens: request.prompt.count)
            self.text = text
        }

        var isPrefilling: Bool { consumed < request.prompt.count }
    }

    /// `stopIds` end a request when chosen (pass none to ignore EOS). `tokenizer` turns tokens
    /// into text and is needed for stop strings.
    public init(
        model: NemotronH, workspace: Workspace, tokenizer: Tokenizer?, stopIds: Set<Int>, prefillChunk: Int = 512,
        maxBatchSize: Int = 0, maxNumTokens: Int = 0
    ) {
        self.model = model
        self.workspace = workspace
        self.tokenizer = tokenizer
        self.stopIds = stopIds
        self.prefillChunk = max(1, prefillChunk)
        self.maxBatchSize = max(0, maxBatchSize)
        self.maxNumTokens = max(0, maxNumTokens)
        collectives = StepCollectives(parallelism: model.parallelism)
        lockstep = model.parallelism.splitsRequests && model.config.has(.moe)
    }

    /// Throws when a token id is outside the vocabulary or the prompt is empty.
    public func validate(_ tokens: [Int]) throws {
        guard !tokens.isEmpty else {
            throw NemotronError.invalidTokens(reason: "the token list is empty; give at least one token id")
        }
        let V = model.config.vocabSize
        if let index = tokens.firstIndex(where: { !(0..<V).contains($0) }) {
            throw NemotronError.invalidTokens(
                reason: "token id \(tokens[index]) at position \(index) is outside the vocabulary 0..<\(V)")
        }
        try ContextLimit(model: model, prefillChunk: prefillChunk).check(promptTokens: tokens.count)
    }

    /// Queues a request and returns its id. Every rank submits the same requests in the same
    /// order; under attention data parallelism only the rank serving it runs it: `rank`, or
    /// by default id mod ranks.
    @discardableResult
    public func submit(_ request: Request, rank: Int? = nil) throws -> Int {
        try validate(request.prompt)
        if !request.stop.isEmpty && tokenizer == nil {
            throw NemotronError.invalidArgument(
                name: "stop", value: "\(request.stop)",
                expected: "a checkpoint with tokenizer.json (stop strings match text)")
        }
        let id = nextID
        nextID += 1
        let world = model.parallelism.world
        let serves = !model.parallelism.splitsRequests || (rank ?? id % world.size) == world.rank
        // Rank 0 keeps every request's record: it reports results in request order.
        if serves || world.isRoot { requests[id] = request }
        if serves { waiting.append(id) }
        return id
    }

    /// Ends a request that has not finished, on every rank that holds it (every rank issues the
    /// same cancellations at the same step): it leaves the batch, and its state is freed. Returns
    /// its finish event (reason `cancelled`, the tokens so far) where this rank served it.
    public func cancel(_ id: Int) -> GenerationEvent? {
        if let index = waiting.firstIndex(of: id) {
            waiting.remove(at: index)
            var generation = Generation(promptTokens: requests[id]?.prompt.count ?? 0)
            generation.finishReason = .cancelled
            finished[id] = generation
            return .finished(request: id, generation)
        }
        guard let index = active.firstIndex(where: { $0.id == id }) else { return nil }
        let r = active.remove(at: index)
        r.generation.finishReason = .cancelled
        r.generation.text = r.text?.text
        finished[id] = r.generation
        return .finished(request: id, r.generation)
    }

    /// Forgets a finished request's record and result (a server releases each one it has
    /// answered, so memory does not grow with the requests served).
    public func release(_ id: Int) {
        guard !active.contains(where: { $0.id == id }), !waiting.contains(id) else { return }
        requests[id] = nil
        finished[id] = nil
    }

    /// The latest forward pass on this rank: its sequences and tokens (decode rows and prefill chunks).
    public private(set) var lastPass = (rows: 0, tokens: 0)

    /// Requests admitted and not finished on this rank.
    public var runningCount: Int { active.count }
    /// Requests submitted to this rank and waiting for a place in the batch.
    public var waitingCount: Int { waiting.count }
    /// Whether this rank has a request to run.
    public var hasWork: Bool { !active.isEmpty || !waiting.isEmpty }

    /// Prompt tokens read so far and in all, over the running requests (for a progress bar).
    public var prefillProgress: (done: Int, total: Int) {
        active.reduce((0, 0)) { ($0.0 + $1.consumed, $0.1 + $1.request.prompt.count) }
    }

    /// One step: admits waiting requests, runs one forward pass, decides tokens and retires
    /// finished requests. Returns this step's events, or nil once no work is left (on every
    /// rank, when ranks step together).
    public func step() -> [GenerationEvent]? {
        var events = admit()
        let busy = !active.isEmpty
        lastPass = (0, 0)
        guard lockstep ? collectives.anyRankBusy(busy) : busy else { return events.isEmpty ? nil : events }
        let plan = planPass()
        let prefilling = plan.map { $0.running.isPrefilling }
        let batch = plan.map { ($0.tokens, $0.running.sequence) }
        lastPass = (plan.count, plan.reduce(0) { $0 + $1.tokens.count })
        for member in plan where member.running.isPrefilling { member.running.consumed += member.tokens.count }
        let clock = Date()
        let logits = model.forward(batch, logits: .last, workspace: workspace)
        let seconds = Date().timeIntervalSince(clock)
        for (member, wasPrefilling) in zip(plan, prefilling) {
            let r = member.running
            if wasPrefilling {
                r.generation.prefillSeconds += seconds
            } else {
                if r.decodePasses > 0 {
                    r.generation.decodeSeconds += seconds
                    r.generation.timedDecodeSteps += 1
                }
                r.decodePasses += 1
            }
        }
        let members = plan.map(\.running)
        // Decode rows, and requests whose prompt this pass completed, get a token.
        let deciding = members.indices.filter { !members[$0].isPrefilling }
        var decisions =
            decidesTokens ? decide(deciding.map { (members[$0], $0) }, logits: logits) : deciding.map { _ in (0, nil) }
        if !model.parallelism.splitsRequests { collectives.broadcastDecisions(&decisions) }
        for (k, decision) in zip(deciding, decisions) {
            events += record(decision, for: members[k], logits: logits.isEmpty ? nil : logits.row(k))
        }
        active.removeAll { finished[$0.id] != nil }
        return events
    }

    /// Runs every queued request to the end, reporting events as they happen, and returns the
    /// results in request order: on every rank under tensor parallelism, on rank 0 only (the
    /// others get an empty array) under attention data parallelism.
    public func run(onEvent: (GenerationEvent) -> Void = { _ in }) -> [Generation] {
        while let events = step() { events.forEach(onEvent) }
        return results()
    }

    /// The finished requests in request order (see `run`).
    public func results() -> [Generation] {
        let all = model.parallelism.splitsRequests ? collectives.gatherGenerations(finished) : finished
        guard model.parallelism.world.isRoot || !model.parallelism.splitsRequests else { return [] }
        return (0..<nextID).compactMap { id in
            requests[id].map { all[id] ?? Generation(promptTokens: $0.prompt.count) }
        }
    }

    /// Every rank's events of one step on rank 0, in rank order (collective over the world
    /// under attention data parallelism, where each rank decides its own requests; under tensor
    /// parallelism rank 0 already has them all). Other ranks get none. For a server, whose
    /// rank 0 streams every request.
    public func gatherEvents(_ events: [GenerationEvent]) -> [GenerationEvent] {
        guard model.parallelism.splitsRequests else { return model.parallelism.world.isRoot ? events : [] }
        return collectives.gatherEvents(events)
    }

    /// Logits `[T, V]` of one prefill over `tokens` (rank 0; empty elsewhere). Under attention
    /// data parallelism rank 0 runs the prompt and the others take part with no tokens.
    public func prefillLogits(_ tokens: [Int]) throws -> [Float] {
        try validate(tokens)
        let world = model.parallelism.world
        let sequence = model.makeSequence(capacity: tokens.count)
        let batch = model.parallelism.splitsRequests && !world.isRoot ? [] : [(tokens, sequence)]
        let logits = model.forward(batch, logits: .all, workspace: workspace).array
        return world.isRoot ? logits : []
    }

    // MARK: - Steps

    /// Whether this rank samples tokens: rank 0 under tensor parallelism, every rank for its
    /// own requests under attention data parallelism.
    private var decidesTokens: Bool { model.parallelism.splitsRequests || model.parallelism.world.isRoot }

    /// Moves waiting requests, oldest first, into the running batch while it has room; a
    /// request with no token budget finishes at once.
    private func admit() -> [GenerationEvent] {
        var events: [GenerationEvent] = []
        var admitted = 0
        for id in waiting {
            if maxBatchSize > 0 && active.count >= maxBatchSize { break }
            admitted += 1
            let request = requests[id]!
            guard request.maxNewTokens > 0 else {
                finished[id] = Generation(promptTokens: request.prompt.count)
                events.append(.finished(request: id, finished[id]!))
                continue
            }
            let text = decidesTokens ? tokenizer.map { TextStream(tokenizer: $0, stops: request.stop) } : nil
            active.append(
                Running(
                    id: id, request: request,
                    sequence: model.makeSequence(capacity: request.prompt.count),
                    text: text))
        }
        waiting.removeFirst(admitted)
        return events
    }

    /// The rows of the next pass: one decode row per running request whose prompt is done, then
    /// prefill chunks in admission order within `prefillChunk` per request and `maxNumTokens`
    /// in all (a pass with no decode row always gets a chunk).
    private func planPass() -> [(running: Running, tokens: [Int])] {
        var members = active.filter { !$0.isPrefilling }.map { ($0, [$0.generation.ids.last!]) }
        var budget = maxNumTokens > 0 ? maxNumTokens - members.count : Int.max
        for r in active where r.isPrefilling {
            let chunk = min(
                prefillChunk, r.request.prompt.count - r.consumed, members.isEmpty ? max(budget, 1) : budget)
            guard chunk > 0 else { break }
            members.append((r, Array(r.request.prompt[r.consumed..<r.consumed + chunk])))
            budget -= chunk
        }
        return members
    }

    /// Samples each request's next token from its row of `logits` and says whether it ends
    /// the request: an EOS id, a stop string in its text, or the token budget.
    private func decide(_ items: [(Running, row: Int)], logits: Logits) -> [(id: Int, reason: FinishReason?)] {
        items.map { r, row in
            guard let greedy = Sampler.argmaxIfFinite(logits.row(row)) else {
                r.released = ""
                return (0, .nonFiniteLogits)
            }
            let id = r.sampler.parameters.isGreedy ? greedy : r.sampler.sample(logits.row(row))
            r.released = r.text?.append(id) ?? ""
            if !r.request.ignoreEOS && stopIds.contains(id) { return (id, .eos) }
            if r.text?.stopped == true { return (id, .stop) }
            return (id, r.generation.ids.count + 1 >= r.request.maxNewTokens ? .length : nil)
        }
    }

    /// Applies one decision to a request: its id, text and kept logits, and its end.
    private func record(
        _ decision: (id: Int, reason: FinishReason?), for r: Running, logits: UnsafeBufferPointer<Float>?
    ) -> [GenerationEvent] {
        r.generation.ids.append(decision.id)
        if r.request.keepLogits, let logits { r.generation.stepLogits.append(Array(logits)) }
        var delta = r.released
        guard let reason = decision.reason else { return [.token(request: r.id, id: decision.id, text: delta)] }
        delta += r.text?.finish() ?? ""
        r.generation.finishReason = reason
        r.generation.text = r.text?.text
        finished[r.id] = r.generation
        return [.token(request: r.id, id: decision.id, text: delta), .finished(request: r.id, r.generation)]
    }
}
