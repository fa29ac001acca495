import Foundation

/// The windows of a fixed-length perplexity evaluation (the protocol of Hugging Face's guide
/// "Perplexity of fixed-length models"): windows of `context` tokens start every `stride`
/// tokens, until one reaches the end; each scores only the tokens that the previous window did
/// not reach, and a token is scored from the logits of the position before it in the same
/// window, so a window's first token is never scored (nor, then, token 0 of the text).
public struct PerplexityWindow: Sendable, Equatable {
    /// The tokens the model sees.
    public let tokens: Range<Int>
    /// The tokens scored.
    public let targets: Range<Int>

    public static func windows(count: Int, context: Int, stride: Int) -> [PerplexityWindow] {
        precondition(context > 1 && stride >= 1 && stride <= context, "context \(context), stride \(stride)")
        var windows: [PerplexityWindow] = []
        var previousEnd = 0
        var begin = 0
        while begin < count {
            let end = min(begin + context, count)
            let first = max(previousEnd, begin + 1)
            windows.append(PerplexityWindow(tokens: begin..<end, targets: first..<max(first, end)))
            previousEnd = end
            if end == count { break }
            begin += stride
        }
        return windows
    }
}

/// The outcome of a perplexity evaluation.
public struct PerplexityScore: Sendable {
    public var tokensScored = 0
    /// Σ −log p(token | the tokens before it in its window), natural log.
    public var totalNLL = 0.0
    public var seconds = 0.0

    public var meanNLL: Double { tokensScored > 0 ? totalNLL / Double(tokensScored) : .nan }
    public var perplexity: Double { exp(meanNLL) }
    public var tokensPerSecond: Double { seconds > 0 ? Double(tokensScored) / seconds : 0 }
}

/// Scores a text's tokens window by window. Under tensor parallelism every rank runs every
/// window and reduces the log-sum-exp and target logit of its own vocabulary rows; only those
/// two numbers per scored token reach rank 0, never the `[T, V]` logits. Under attention data
/// parallelism window i runs on rank i mod ranks with the whole vocabulary, and the ranks' sums
/// meet on rank 0 at the end.
public final class PerplexityEvaluator {
    public let model: NemotronH
    public let workspace: Workspace
    private let collectives: StepCollectives

    public init(model: NemotronH, workspace: Workspace) {
        self.model = model
        self.workspace = workspace
        collectives = StepCollectives(parallelism: model.parallelism)
    }

    /// The score on rank 0 (other ranks get a score with nothing counted). `progress(done,
    /// total)` is called after each window pass.
    public func score(_ tokens: [Int], context: Int, stride: Int, progress: (Int, Int) -> Void = { _, _ in })
        -> PerplexityScore
    {
        let windows = PerplexityWindow.windows(count: tokens.count, context: context, stride: stride)
        let world = model.parallelism.world
        let split = model.parallelism.splitsRequests
        // Under attention DP every rank runs the same number of passes (MoE layers exchange
        // tokens in each), idle ranks with empty ones.
        let passes = split ? (windows.count + world.size - 1) / world.size : windows.count
        var score = PerplexityScore()
        let clock = Date()
        for pass in 0..<passes {
            let index = split ? pass * world.size + world.rank : pass
            let window = index < windows.count ? windows[index] : nil
            let batch = window.map { [(Array(tokens[$0.tokens]), model.makeSequence(capacity: $0.tokens.count))] } ?? []
            let logits = model.forward(batch, logits: .all, workspace: workspace, gatherVocabulary: false)
            if let window {
                let (total, count) = scoreWindow(window, tokens: tokens, logits: logits)
                score.totalNLL += total
                score.tokensScored += count
            }
            progress(pass + 1, passes)
        }
        if split {
            let totals = collectives.gatherScoreTotals([score.totalNLL, Double(score.tokensScored)])
            score.totalNLL = totals.reduce(0) { $0 + $1[0] }
            score.tokensScored = totals.reduce(0) { $0 + Int($1[1]) }
        }
        score.seconds = Date().timeIntervalSince(clock)
        return score
    }

    /// Σ NLL and the count over one window's targets, on rank 0 of the tensor group.
    private func scoreWindow(_ window: PerplexityWindow, tokens: [Int], logits: Logits) -> (Double, Int) {
        let vocabulary = logits.firstVocabulary..<logits.firstVocabulary + logits.vocab
        // Per target: [log-sum-exp over this rank's rows, its logit here or -inf].
        var local: [Double] = []
        local.reserveCapacity(2 * window.targets.count)
        for t in window.targets {
            let row = logits.row(t - 1 - window.tokens.lowerBound)
            local.append(Self.logSumExp(row))
            local.append(vocabulary.contains(tokens[t]) ? Double(row[tokens[t] - vocabulary.lowerBound]) : -.infinity)
        }
        let ranks = collectives.gatherRowScores(local)
        guard !ranks.isEmpty else { return (0, 0) }
        var total = 0.0
        for k in 0..<window.targets.count {
            let lse = Self.logSumExp(ranks.map { $0[2 * k] })
            let target = ranks.map { $0[2 * k + 1] }.max()!
            total += lse - target
        }
        return (total, window.targets.count)
    }

    static func logSumExp<Values: Collection>(_ values: Values) -> Double where Values.Element: BinaryFloatingPoint {
        let top = values.map(Double.init).max() ?? -.infinity
        guard top.isFinite else { return top }
        return top + log(values.reduce(0.0) { $0 + exp(Double($1) - top) })
    }
}
