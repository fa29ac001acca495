/// One pre-norm residual block: `residual += Σ_ranks previous partial; u = RMSNorm(residual); partial = mixer(u)`.
/// Every Nemotron-H layer has exactly this shape, so the boundary between blocks is where the
/// tensor-parallel reduction happens, for all four mixer kinds alike (`ForwardCollectives`).
struct Block {
    let index: Int
    /// `[H]` pre-mixer RMSNorm weight.
    let norm: [Float]
    let mixer: Mixer

    init(index: Int, kind: LayerKind, config: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        self.index = index
        norm = try checkpoint.vector(WeightNames.layer(index, WeightNames.norm), count: config.hiddenSize)
        mixer = try Mixer(kind: kind, layer: index, config: config, plan: plan, checkpoint: checkpoint)
    }
}
