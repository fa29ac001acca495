/// One pre-norm residual block: `residual += Σ_ranks previous partial; u = RMSNorm(residual); partial = mixer(u)`.
/// Every Nemotron-H layer has exactly this shape, so the boundary between blocks is where the
/// tensor-parallel reduction happens, for all four mixer kinds alike.
struct Block {
    let index: Int
    let kind: LayerKind
    /// `[H]` pre-mixer RMSNorm weight.
    let norm: [Float]
    let mixer: Mixer

    init(index: Int, kind: LayerKind, config: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        self.index = index
        self.kind = kind
        norm = try checkpoint.vector(WeightNames.layer(index, WeightNames.norm), count: config.hiddenSize)
        mixer = try Mixer(kind: kind, layer: index, config: config, plan: plan, checkpoint: checkpoint)
    }
}

/// The block boundary: sums the previous mixer's partial outputs across ranks, adds them to
/// the residual stream and normalises the result with the next norm.
enum BlockBoundary {
    /// partial `[T, H]` (reduced in place), residual `[T, H]` updated, normed `[T, H]` written.
    static func reduceAddNorm(_ partial: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>,
                              norm: [Float], eps: Float, tokens T: Int, width H: Int,
                              into normed: UnsafeMutablePointer<Float>, communicator: Communicator) {
        if communicator.size > 1 { communicator.allReduceSum(partial, count: T * H) }
        for i in 0..<T * H { residual[i] += partial[i] }
        RMSNorm.apply(residual, weight: norm, eps: eps, tokens: T, width: H, into: normed)
    }
}
