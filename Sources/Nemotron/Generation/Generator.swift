import Foundation

/// Why a generation ended.
public enum FinishReason: String, Sendable, CaseIterable {
    /// An end-of-sequence token id.
    case eos
    /// A stop string appeared in the text.
    case stop
    /// The token budget ran out.
    case length
}

/// One prompt to continue, with its own budget and sampling.
public struct Request: Sendable {
    public var prompt: [Int]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters

    public init(prompt: [Int], maxNewTokens: Int, sampling: SamplingParameters = SamplingParameters()) {
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
    }
}

/// The outcome of one generation, with timings (prefill and decode measured separately).
public struct Generation: Sendable {
    public var promptTokens: Int
    public var ids: [Int] = []
    /// Row s is the distribution that chose `ids[s]` (kept only when asked for).
    public var stepLogits: [[Float]] = []
    public var finishReason: FinishReason = .length
    public var prefillSeconds: Double = 0
    /// Time of the decode steps after the first, which warms up the one-token path.
    public var decodeSeconds: Double = 0
    public var timedDecodeSteps = 0

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(timedDecodeSteps) / decodeSeconds : 0 }
}

/// Prefill, then one-token decode steps until EOS or the token budget. Rank 0 samples and
/// broadcasts each token so every rank feeds the same ids.
public final class Generator {
    public let model: NemotronH
    public let workspace: Workspace
    public let communicator: Communicator
    /// Layer-shifted fused AllReduce + residual + RMSNorm (resolved from `fuse_allreduce_norm`).
    public var fusedAllReduceNorm = false
    /// Prompt tokens per sequence in one prefill pass. Longer prompts are prefilled in pieces
    /// (the Mamba and KV state carry over), which bounds the workspace's activation memory.
    public var prefillChunk = 512

    public init(model: NemotronH, workspace: Workspace, communicator: Communicator) {
        self.model = model
        self.workspace = workspace
        self.communicator = communicator
    }

    /// Throws when a token id is outside the vocabulary or the prompt is empty.
    public func validate(_ tokens: [Int]) throws {
        guard !tokens.isEmpty else { throw NemotronError.invalidTokens(reason: "the token list is empty; give at least one token id") }
        let V = model.config.vocabSize
        if let index = tokens.firstIndex(where: { !(0..<V).contains($0) }) {
            throw NemotronError.invalidTokens(reason: "token id \(tokens[index]) at position \(index) is outside the vocabulary 0..<\(V)")
        }
    }

    /// Logits `[T, V]` of one prefill over `tokens` (rank 0; empty elsewhere). Under attention
    /// data parallelism rank 0 runs the prompt and the others take part with no tokens.
    public func prefillLogits(_ tokens: [Int]) throws -> [Float] {
        try validate(tokens)
        let sequence = model.makeSequence(capacity: tokens.count)
        let batch = model.plan.attentionDataParallel && !communicator.isRoot ? [] : [(tokens, sequence)]
        let logits = model.forward(batch, logits: .all, workspace: workspace, communicator: communicator, fused: fusedAllReduceNorm)
        return communicator.isRoot ? logits : []
    }

    public func generate(prompt: [Int], maxNewTokens: Int, sampling: SamplingParameters, stopIds: Set<Int>,
                         keepLogits: Bool = false, onToken: (Int) -> Void = { _ in }) throws -> Generation {
        try generate([Request(prompt: prompt, maxNewTokens: maxNewTokens, sampling: sampling)], stopIds: stopIds,
                     keepLogits: keepLogits, onToken: { _, id in onToken(id) })[0]
    }

    /// Generates for every request together: one prefill pass over all prompts, then one pass
    /// per step over the requests still running (finished ones drop out). Each request has its
    /// own sampler (seeded alike), so a request's tokens equal those of running it alone.
    /// Rank 0 samples and decides who finished (`shouldStop(request, ids)`, e.g. stop
    /// strings, is asked there only) and broadcasts both, so all ranks stay in step.
    public func generate(_ requests: [Request], stopIds: Set<Int>, keepLogits: Bool = false,
                         shouldStop: (Int, [Int]) -> Bool = { _, _ in false },
                         onToken: (Int, Int) -> Void = { _, _ in },
                         onFinish: (Int, Generation) -> Void = { _, _ in }) throws -> [Generation] {
        for request in requests { try validate(request.prompt) }
        if model.plan.attentionDataParallel {
            return try generateDataParallel(requests, stopIds: stopIds, keepLogits: keepLogits, shouldStop: shouldStop,
                                            onToken: onToken, onFinish: onFinish)
        }
        var results = requests.map { Generation(promptTokens: $0.prompt.count) }
        var samplers = requests.map { Sampler($0.sampling) }
        let sequences = requests.map { model.makeSequence(capacity: $0.prompt.count + $0.maxNewTokens) }
        var active = requests.indices.filter { requests[$0].maxNewTokens > 0 }
        guard !active.isEmpty else { return results }

        let clock = Date()
        var logits = prefill(active, requests: requests, sequence: { sequences[$0] }, lockstep: false)
        let prefillSeconds = Date().timeIntervalSince(clock)
        for i in active { results[i].prefillSeconds = prefillSeconds }
        var step = 0
        while !active.isEmpty {
            // Rank 0 decides each running request's token and whether it finished, and broadcasts
            // [ids | reasons] (reason 0: still running, else 1 + its index in FinishReason.allCases).
            var message = [Int32](repeating: 0, count: 2 * active.count)
            if communicator.isRoot {
                for (k, decision) in decide(active, logits: logits, samplers: &samplers, results: results, requests: requests,
                                            stopIds: stopIds, shouldStop: shouldStop).enumerated() {
                    message[k] = Int32(decision.id)
                    message[active.count + k] = Int32(decision.reason.map { FinishReason.allCases.firstIndex(of: $0)! + 1 } ?? 0)
                }
            }
            message.withUnsafeMutableBufferPointer { communicator.broadcast($0.baseAddress!, count: $0.count, root: 0) }
            let decisions = (0..<active.count).map { k in
                (id: Int(message[k]), reason: message[active.count + k] > 0 ? FinishReason.allCases[Int(message[active.count + k]) - 1] : nil)
            }
            active = record(decisions, of: active, logits: logits, keepLogits: keepLogits, results: &results, onToken: onToken, onFinish: onFinish)
            guard !active.isEmpty else { break }
            logits = decodeStep(active, sequence: { sequences[$0] }, step: step, results: &results)
            step += 1
        }
        return results
    }

    /// Attention data parallelism: request i runs on rank i mod ranks, with its own batch and
    /// sampling there (no token broadcast). With MoE layers, which exchange tokens each step,
    /// every rank steps until all ranks are done, a rank without requests taking part with no
    /// tokens; without them ranks run on their own, with no collective until the results are
    /// gathered to rank 0 in input order (other ranks return an empty array).
    private func generateDataParallel(_ requests: [Request], stopIds: Set<Int>, keepLogits: Bool, shouldStop: (Int, [Int]) -> Bool,
                                      onToken: (Int, Int) -> Void, onFinish: (Int, Generation) -> Void) throws -> [Generation] {
        let mine = requests.indices.filter { $0 % communicator.size == communicator.rank }
        var results = requests.map { Generation(promptTokens: $0.prompt.count) }
        var samplers = requests.map { Sampler($0.sampling) }
        let sequences = mine.map { model.makeSequence(capacity: requests[$0].prompt.count + requests[$0].maxNewTokens) }
        let sequence = Dictionary(uniqueKeysWithValues: zip(mine, sequences))
        var active = mine.filter { requests[$0].maxNewTokens > 0 }
        let lockstep = model.config.has(.moe)
        let clock = Date()
        var logits = prefill(active, requests: requests, sequence: { sequence[$0]! }, lockstep: lockstep)
        let prefillSeconds = Date().timeIntervalSince(clock)
        for i in active { results[i].prefillSeconds = prefillSeconds }
        func anyActive() -> Bool { lockstep ? communicator.allReduceMax(active.isEmpty ? 0 : 1) > 0 : !active.isEmpty }
        var step = 0
        while anyActive() {
            let decisions = decide(active, logits: logits, samplers: &samplers, results: results, requests: requests, stopIds: stopIds,
                                   shouldStop: shouldStop)
            active = record(decisions, of: active, logits: logits, keepLogits: keepLogits, results: &results, onToken: onToken, onFinish: onFinish)
            guard anyActive() else { break }
            logits = decodeStep(active, sequence: { sequence[$0]! }, step: step, results: &results)
            step += 1
        }
        return gatherResults(results, mine: mine)
    }

    /// Prefills the prompts of `active` in passes of at most `prefillChunk` tokens per sequence
    /// and returns each request's last-position logits `[active.count, V]`, in `active` order
    /// (rank 0 only under tensor parallelism). With `lockstep`, ranks first agree on the number
    /// of passes, running empty ones if they have fewer, so MoE exchanges line up.
    private func prefill(_ active: [Int], requests: [Request], sequence: (Int) -> SequenceState, lockstep: Bool) -> [Float] {
        let chunk = max(1, prefillChunk)
        let local = active.map { (requests[$0].prompt.count + chunk - 1) / chunk }.max() ?? 0
        let passes = lockstep ? communicator.allReduceMax(local) : local
        var done = [Int](repeating: 0, count: requests.count)
        var last: [Int: [Float]] = [:]
        let V = model.config.vocabSize
        for _ in 0..<passes {
            let pending = active.filter { done[$0] < requests[$0].prompt.count }
            let batch = pending.map { i in (Array(requests[i].prompt[done[i]..<min(done[i] + chunk, requests[i].prompt.count)]), sequence(i)) }
            let logits = model.forward(batch, logits: .last, workspace: workspace, communicator: communicator, fused: fusedAllReduceNorm)
            for (k, i) in pending.enumerated() {
                done[i] += batch[k].0.count
                if done[i] == requests[i].prompt.count && !logits.isEmpty { last[i] = Array(logits[k * V..<(k + 1) * V]) }
            }
        }
        return active.flatMap { last[$0] ?? [] }
    }

    /// One decode pass over the running requests, each fed its last token. The first pass warms
    /// up the one-token path and is left out of the timing.
    private func decodeStep(_ active: [Int], sequence: (Int) -> SequenceState, step: Int, results: inout [Generation]) -> [Float] {
        let clock = Date()
        let logits = model.forward(active.map { ([results[$0].ids.last!], sequence($0)) }, logits: .last, workspace: workspace,
                                   communicator: communicator, fused: fusedAllReduceNorm)
        if step > 0 {
            let seconds = Date().timeIntervalSince(clock)
            for i in active {
                results[i].decodeSeconds += seconds
                results[i].timedDecodeSteps += 1
            }
        }
        return logits
    }

    /// Each rank's results for its requests, collected on rank 0 in input order.
    private func gatherResults(_ results: [Generation], mine: [Int]) -> [Generation] {
        let mineText = mine.map { i in
            let r = results[i]
            let logits = r.stepLogits.map { $0.map { String($0.bitPattern) }.joined(separator: ",") }.joined(separator: ";")
            return "\(i)|\(r.ids.map(String.init).joined(separator: ","))|\(r.finishReason.rawValue)|\(r.prefillSeconds)|"
                + "\(r.decodeSeconds)|\(r.timedDecodeSteps)|\(logits)"
        }.joined(separator: "\n")
        let all = communicator.gather(text: mineText)
        guard communicator.isRoot else { return [] }
        var gathered = results
        for line in all.flatMap({ $0.split(separator: "\n") }) {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 7, let i = Int(fields[0]) else { continue }
            gathered[i].ids = fields[1].split(separator: ",").compactMap { Int($0) }
            gathered[i].finishReason = FinishReason(rawValue: fields[2]) ?? .length
            gathered[i].prefillSeconds = Double(fields[3]) ?? 0
            gathered[i].decodeSeconds = Double(fields[4]) ?? 0
            gathered[i].timedDecodeSteps = Int(fields[5]) ?? 0
            gathered[i].stepLogits = fields[6].isEmpty ? [] : fields[6].split(separator: ";").map {
                $0.split(separator: ",").map { Float(bitPattern: UInt32($0) ?? 0) }
            }
        }
        return gathered
    }

    /// Samples each running request's next token from its row of `logits` and says whether it
    /// finishes the request: an EOS id, `shouldStop` on its ids so far, or the token budget.
    private func decide(_ active: [Int], logits: [Float], samplers: inout [Sampler], results: [Generation], requests: [Request],
                        stopIds: Set<Int>, shouldStop: (Int, [Int]) -> Bool) -> [(id: Int, reason: FinishReason?)] {
        let V = model.config.vocabSize
        return active.enumerated().map { k, i in
            let id = samplers[i].sample(logits[k * V..<(k + 1) * V])
            let ids = results[i].ids + [id]
            if stopIds.contains(id) { return (id, .eos) }
            if shouldStop(i, ids) { return (id, .stop) }
            return (id, ids.count >= requests[i].maxNewTokens ? .length : nil)
        }
    }

    /// Applies one step's decisions to the running requests (ids, kept logits where this rank
    /// has them, callbacks) and returns those still running.
    private func record(_ decisions: [(id: Int, reason: FinishReason?)], of active: [Int], logits: [Float], keepLogits: Bool,
                        results: inout [Generation], onToken: (Int, Int) -> Void, onFinish: (Int, Generation) -> Void) -> [Int] {
        let V = model.config.vocabSize
        var running: [Int] = []
        for ((k, i), decision) in zip(active.enumerated(), decisions) {
            results[i].ids.append(decision.id)
            if keepLogits && !logits.isEmpty { results[i].stepLogits.append(Array(logits[k * V..<(k + 1) * V])) }
            onToken(i, decision.id)
            if let reason = decision.reason {
                results[i].finishReason = reason
                onFinish(i, results[i])
            } else {
                running.append(i)
            }
        }
        return running
    }
}
