/// One prompt to continue, with its own budget, sampling and stop strings.
public struct Request: Sendable {
    public var prompt: [Int]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// The request ends when its text contains one of these; the stop string is not part of
    /// the text (needs the checkpoint's tokenizer).
    public var stop: [String]
    /// Keep the logits row that chose each token (`Generation.stepLogits`).
    public var keepLogits: Bool
    /// Run to the token budget even past the scheduler's stop ids (a server request's `ignore_eos`).
    public var ignoreEOS: Bool

    public init(
        prompt: [Int], maxNewTokens: Int, sampling: SamplingParameters = SamplingParameters(), stop: [String] = [],
        keepLogits: Bool = false, ignoreEOS: Bool = false
    ) {
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stop = stop
        self.keepLogits = keepLogits
        self.ignoreEOS = ignoreEOS
    }
}

/// Why a generation ended.
public enum FinishReason: String, Sendable, CaseIterable {
    /// An end-of-sequence token id.
    case eos
    /// The logits were NaN or infinite, so no token could be chosen (`Engine.generate` throws).
    case nonFiniteLogits
    /// A stop string appeared in the text.
    case stop
    /// The token budget ran out.
    case length
    /// `Scheduler.cancel` ended it (a server's client went away, or the server shut down).
    case cancelled
}

/// The outcome of one request, with timings (prefill and decode measured separately).
public struct Generation: Sendable, Equatable {
    public var promptTokens: Int
    public var ids: [Int] = []
    /// The generated text, cut before a stop string; nil without a tokenizer, and on ranks that
    /// do not decide tokens (every rank but 0 under tensor parallelism).
    public var text: String?
    /// Row s is the distribution that chose `ids[s]` (kept only when asked for).
    public var stepLogits: [[Float]] = []
    public var finishReason: FinishReason = .length
    public var prefillSeconds: Double = 0
    /// Time of this request's decode passes after its first, which warms up the one-token path.
    public var decodeSeconds: Double = 0
    public var timedDecodeSteps = 0

    public init(promptTokens: Int) { self.promptTokens = promptTokens }

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(timedDecodeSteps) / decodeSeconds : 0 }
}

/// What a scheduler step reports for one request.
public enum GenerationEvent: Sendable {
    /// Request `request` got token `id`; `text` is the text it completes, never half a UTF-8
    /// character and held back while it could still begin a stop string (empty on ranks that
    /// do not decide tokens).
    case token(request: Int, id: Int, text: String)
    /// Request `request` finished; its complete result.
    case finished(request: Int, Generation)
}
