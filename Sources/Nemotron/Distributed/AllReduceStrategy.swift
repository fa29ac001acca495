/// How a block-boundary reduction is carried out (config `allreduce_strategy`). Every strategy
/// serves both the fused (reduction + residual add + RMSNorm epilogue) and the unfused call,
/// and accumulates in fp32 in a fixed order so every rank gets bit-identical results.
public enum AllReduceStrategy: String, CaseIterable, Sendable {
    /// `MPI_Allreduce`, then the residual add and norm as a second pass (TensorRT-LLM's NCCL path).
    case mpi
    /// Shared window: every rank publishes its partial, then sums all of them in rank order and
    /// applies residual + norm in the same loop. One node only.
    case oneshot
    /// Shared window: rows split over the ranks; each reduces, adds and normalises its rows once,
    /// then all ranks gather the normed and residual rows. One node only.
    case twoshot
    /// MPI point-to-point ring: reduce-scatter of rows with the residual + norm epilogue on the
    /// owned rows, then ring all-gather. Works across machines.
    case ring
    /// Chosen per message by size and by whether all ranks share a node (`choice`).
    case auto

    /// What `auto` runs for a message of `bytes` among `ranks`, from `bench-allreduce` (fused) on
    /// both machines the README describes: with 2 ranks on a node oneshot is fastest at every size
    /// measured (8 KiB to 8 MiB, on the 2-core VM and on the 16-core host); with 4, 8 and 16 ranks
    /// on the 16-core host twoshot is, by up to 7× over oneshot at 16 ranks (each rank reads every
    /// peer's whole partial in oneshot, a 1/n share in twoshot), and 1.1-2× over MPI, except at 4
    /// ranks up to 16 KiB (a decode token of hidden 2048-4096), where oneshot's single phase won:
    /// at 16 KiB by 1.26× and 1.79× in two calls; at 8 KiB the calls split (twoshot 1.32×, then
    /// oneshot 1.05×). Across nodes (no shared memory): MPI's tuned allreduce for small messages,
    /// the ring above 1 MiB.
    public static func choice(bytes: Int, ranks: Int, singleNode: Bool) -> AllReduceStrategy {
        if singleNode { return ranks <= 2 || (ranks <= 4 && bytes <= 16 << 10) ? .oneshot : .twoshot }
        return bytes <= 1 << 20 ? .mpi : .ring
    }

    /// Whether this strategy needs every rank on one node.
    public var needsSharedMemory: Bool { self == .oneshot || self == .twoshot }
}

/// The `fuse_allreduce_norm` switch and its resolution.
public enum FuseAllReduceNorm: String, CaseIterable, Sendable {
    case auto
    case on
    case off

    /// Whether fusion is in effect, and why. It is off by itself when tp_size is 1 (nothing to
    /// reduce) or with attention data parallelism (layers have no tensor-parallel reduction),
    /// whatever was asked.
    public func resolve(tpSize: Int, attentionDataParallel: Bool) -> (enabled: Bool, reason: String) {
        if tpSize == 1 { return (false, "disabled by itself: tp_size is 1, there is nothing to reduce") }
        if attentionDataParallel {
            return (
                false,
                "disabled by itself: attention data parallelism is on, so layers have no tensor-parallel reduction"
            )
        }
        switch self {
        case .auto: return (true, "auto: tp_size is \(tpSize)")
        case .on: return (true, "on as configured")
        case .off: return (false, "off as configured")
        }
    }
}
