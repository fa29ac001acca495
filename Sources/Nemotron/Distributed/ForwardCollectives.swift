/// Every collective one forward pass issues, by name, on the groups of the model's
/// `Parallelism`. Mixers and the model call only these; nothing else in a forward pass talks to
/// other ranks. In one pass (`NemotronH.forward`) every rank issues them in this order:
///
///     for each layer i:
///       enterBlock            i ≥ 1, fused: AllReduce(previous partial) + residual + RMSNorm (+ int8
///                             quantization of the normed rows in decode under compute_dtype int8), one
///                             collective (tensor group)
///       mixer of layer i:
///         sumGroupStatistics  Mamba when tp > n_groups: AllReduce of the [T, G] gated-norm sums (tensor group)
///         exchangeExperts     MoE under attention DP: all-gather of token counts, routed inputs and routing,
///                             then reduce-scatter of the expert outputs (world)
///       leaveBlock            unfused: AllReduce of the mixer's [T, H] partial (tensor group)
///     enterBlock              before norm_f (fused: the last AllReduce)
///     gatherLogits            gather of each rank's vocabulary rows to rank 0 (tensor group)
///
/// On a group of one rank every operation is local arithmetic only.
struct ForwardCollectives {
    let parallelism: Parallelism
    var tensorGroup: Communicator { parallelism.tensorGroup }
    var fused: Bool { parallelism.fusedAllReduceNorm }

    /// Entry of block i ≥ 1, or before `norm_f`: `residual += Σ_ranks partial; normed = RMSNorm(residual)`.
    /// Fused: the "pre-allreduce", one collective with the add and norm as its epilogue; given
    /// `quantized` (rows of `normed`), the epilogue also quantizes each normed row to int8 for
    /// the block's int8 GEMVs, and the packages are returned.
    /// Unfused: the partial was reduced by `leaveBlock`, so add and norm run as two local passes
    /// (rows split over `pool`'s threads), and each GEMV quantizes its own input (nil is returned).
    func enterBlock(
        _ partial: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>, norm: [Float], eps: Float,
        tokens T: Int, width H: Int, into normed: UnsafeMutablePointer<Float>, quantized: QuantizedRows? = nil,
        pool: ThreadPool
    ) -> QuantizedRows? {
        if fused {
            tensorGroup.allReduceAddNorm(
                partial, residual: residual, weight: norm, eps: eps, rows: T, width: H, into: normed,
                quantized: quantized)
            return quantized
        }
        ResidualNorm.addThenNormInTwoPasses(
            partial, residual: residual, weight: norm, eps: eps, rows: T, width: H, into: normed, pool: pool)
        return nil
    }

    /// After a mixer: unfused mode reduces its partial output `[T, H]` now.
    func leaveBlock(_ partial: UnsafeMutablePointer<Float>, count: Int) {
        if !fused && tensorGroup.size > 1 { tensorGroup.allReduceSum(partial, count: count) }
    }

    /// Mamba with replicated B/C groups: sums the `[T, G]` per-group sums of squares over the
    /// ranks that share each group.
    func sumGroupStatistics(_ sums: UnsafeMutablePointer<Float>, count: Int) {
        tensorGroup.allReduceSum(sums, count: count)
    }

    /// Whether MoE layers exchange tokens with the other ranks (attention data parallelism:
    /// each rank holds whole experts of its own, and serves its own tokens).
    var exchangesExperts: Bool { parallelism.mode == .attentionDataParallel }

    /// Every rank's routed token count, in rank order.
    func expertTokenCounts(_ local: Int) -> [Int] { parallelism.world.allGather(local) }

    /// Concatenates every rank's `[T_r, width]` rows into `output` (`[ΣT, width]`).
    func gatherExpertInputs(
        _ rows: UnsafePointer<Float>, width: Int, counts: [Int], into output: UnsafeMutablePointer<Float>
    ) {
        parallelism.world.allGather(rows, into: output, counts: counts.map { $0 * width })
    }

    /// Sums `[ΣT, width]` over the ranks and leaves this rank's `[T_r, width]` rows in `output`.
    func scatterExpertOutputs(
        _ rows: UnsafePointer<Float>, width: Int, counts: [Int], into output: UnsafeMutablePointer<Float>
    ) {
        parallelism.world.reduceScatter(rows, into: output, counts: counts.map { $0 * width })
    }

    /// Each rank's `[rows, V_rank]` LM-head slice, concatenated in rank order on rank 0.
    func gatherLogits(
        _ local: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int]
    ) {
        tensorGroup.gather(local, count: count, into: output, counts: counts, root: 0)
    }
}

/// What a mixer's forward pass runs with: kernels (scratch, threads, compute policy) and the
/// collectives it may issue.
struct ForwardPass {
    let kernels: KernelContext
    let collectives: ForwardCollectives
    var workspace: Workspace { kernels.workspace }
    var pool: ThreadPool { kernels.workspace.pool }
}
