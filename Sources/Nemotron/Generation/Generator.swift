import Foundation

/// Why a generation ended.
public enum FinishReason: String, Sendable {
    case eos
    case length
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

    /// Logits `[T, V]` of one prefill over `tokens` (rank 0; empty elsewhere).
    public func prefillLogits(_ tokens: [Int]) throws -> [Float] {
        try validate(tokens)
        let sequence = model.makeSequence(capacity: tokens.count)
        return model.forward(tokens, sequence: sequence, logits: .all, workspace: workspace, communicator: communicator,
                             fused: fusedAllReduceNorm)
    }

    public func generate(prompt: [Int], maxNewTokens: Int, sampling: SamplingParameters, stopIds: Set<Int>,
                         keepLogits: Bool = false, onToken: (Int) -> Void = { _ in }) throws -> Generation {
        try validate(prompt)
        var result = Generation(promptTokens: prompt.count)
        guard maxNewTokens > 0 else { return result }
        var sampler = Sampler(sampling)
        let V = model.config.vocabSize
        let sequence = model.makeSequence(capacity: prompt.count + maxNewTokens)
        let start = Date()
        var logits = model.forward(prompt, sequence: sequence, logits: .last, workspace: workspace, communicator: communicator,
                                   fused: fusedAllReduceNorm)
        result.prefillSeconds = Date().timeIntervalSince(start)
        var decodeStart = Date()
        for step in 0..<maxNewTokens {
            var token = Int32(communicator.isRoot ? sampler.sample(logits[0..<V]) : 0)
            communicator.broadcast(&token, count: 1, root: 0)
            let id = Int(token)
            result.ids.append(id)
            if keepLogits && communicator.isRoot { result.stepLogits.append(logits) }
            onToken(id)
            if stopIds.contains(id) {
                result.finishReason = .eos
                break
            }
            if step == maxNewTokens - 1 { break }
            if step == 1 { decodeStart = Date() }
            logits = model.forward([id], sequence: sequence, logits: .last, workspace: workspace, communicator: communicator,
                                   fused: fusedAllReduceNorm)
            if step >= 1 { result.timedDecodeSteps += 1 }
        }
        if result.timedDecodeSteps > 0 { result.decodeSeconds = Date().timeIntervalSince(decodeStart) }
        return result
    }
}
