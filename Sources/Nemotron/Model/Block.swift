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

/// Where the tensor-parallel reductions happen: exactly one collective per layer, either
/// fused into the next block's entry (TensorRT-LLM's `fuse_allreduce_norm`) or right after
/// each mixer.
enum BlockBoundary {
    /// After a mixer: unfused mode reduces its partial output `[T, H]` now.
    static func leave(_ partial: UnsafeMutablePointer<Float>, count: Int, fused: Bool, communicator: Communicator) {
        if !fused && communicator.size > 1 { communicator.allReduceSum(partial, count: count) }
    }

    /// Entry of block i ≥ 1, or before `norm_f`: `residual += Σ partial; normed = RMSNorm(residual)`.
    /// Fused: the "pre-allreduce", one collective with the add and norm as its epilogue.
    /// Unfused: the partial was reduced by `leave`, so add and norm run as separate passes.
    static func enter(_ partial: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>, norm: [Float], eps: Float,
                      tokens T: Int, width H: Int, into normed: UnsafeMutablePointer<Float>, fused: Bool, communicator: Communicator) {
        if fused {
            communicator.allReduceAddNorm(partial, residual: residual, weight: norm, eps: eps, rows: T, width: H, into: normed)
        } else {
            ResidualNorm.addThenNorm(partial, residual: residual, weight: norm, eps: eps, rows: T, width: H, into: normed)
        }
    }
}
