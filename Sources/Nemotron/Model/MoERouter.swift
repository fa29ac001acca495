import Foundation

/// The Nemotron-H MoE router (transformers' `NemotronHTopkRouter`; docs/architecture.md): fp32 logits,
/// sigmoid scores, `e_score_correction_bias` added for choosing only, group-limited top-k
/// (`n_group` / `topk_group`, group score = sum of its two best), weights from the unbiased
/// scores, renormalised when `norm_topk_prob`, times `routed_scaling_factor`. Replicated on
/// every rank, so every rank routes identically. Ties go to the lower expert index.
struct MoERouter {
    let numExperts: Int
    let expertsPerToken: Int
    let groups: Int
    let topKGroups: Int
    let normTopKProb: Bool
    let scalingFactor: Float
    /// `[E, H]` router weight and `[E]` correction bias.
    let gate: WeightMatrix
    let correctionBias: [Float]

    init(layer: Int, config c: ModelConfig, checkpoint: Checkpoint) throws {
        let name = { WeightNames.layer(layer, $0) }
        numExperts = c.numExperts
        expertsPerToken = c.expertsPerToken
        groups = c.routerGroups
        topKGroups = c.routerTopKGroups
        normTopKProb = c.normTopKProb
        scalingFactor = c.routedScalingFactor
        gate = try checkpoint.matrix(name(WeightNames.MoE.gate), rows: c.numExperts, cols: c.hiddenSize)
        correctionBias = try checkpoint.vector(name(WeightNames.MoE.eScoreCorrectionBias), count: c.numExperts)
    }

    /// One token's choice: expert ids and their weights, in selection order.
    struct Choice {
        var experts: [Int]
        var weights: [Float]
    }

    /// Routes `T` normed tokens `[T, H]`; `logits` is `[T, E]` scratch.
    func route(_ u: UnsafePointer<Float>, tokens T: Int, logits: UnsafeMutablePointer<Float>, _ kernels: KernelContext)
        -> [Choice]
    {
        MatMul.linear(u, tokens: T, gate, into: logits, kernels)
        return (0..<T).map { choose(logits + $0 * numExperts) }
    }

    private func choose(_ logits: UnsafePointer<Float>) -> Choice {
        let scores = (0..<numExperts).map { Activation.sigmoid(logits[$0]) }
        var forChoice = (0..<numExperts).map { scores[$0] + correctionBias[$0] }
        if groups > 1 {
            let size = numExperts / groups
            let groupScores = (0..<groups).map { g in
                Self.top(2, of: Array(forChoice[g * size..<(g + 1) * size])).reduce(0) { $0 + $1.value }
            }
            let kept = Set(Self.top(topKGroups, of: groupScores).map(\.index))
            for g in 0..<groups where !kept.contains(g) {
                for e in g * size..<(g + 1) * size { forChoice[e] = -.infinity }
            }
        }
        let experts = Self.top(expertsPerToken, of: forChoice).map(\.index)
        var weights = experts.map { scores[$0] }
        if normTopKProb {
            let denominator = weights.reduce(0, +) + 1e-20
            weights = weights.map { $0 / denominator }
        }
        return Choice(experts: experts, weights: weights.map { $0 * scalingFactor })
    }

    /// The `k` largest values, highest first; ties go to the lower index.
    static func top(_ k: Int, of values: [Float]) -> [(index: Int, value: Float)] {
        let order = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        return order.prefix(k).map { ($0, values[$0]) }
    }
}
