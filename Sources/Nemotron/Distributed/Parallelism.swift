/// How this run's processes share the work, decided once at start-up and owned by the model.
/// Every other part asks this value instead of re-checking flags: which ranks a layer is split
/// over, which ranks divide the routed experts, which requests are this rank's, and whether the
/// block-boundary reduction is fused.
public struct Parallelism {
    /// The two ways ranks can share a model (closed set).
    public enum Mode: String, Sendable {
        /// Every layer split over all ranks; all ranks run the same batch.
        case tensorParallel = "tensor parallel"
        /// Every layer whole on every rank except the routed experts, which are divided between
        /// the ranks (expert parallelism); each rank runs its own requests.
        case attentionDataParallel = "attention data parallel"
    }

    public let mode: Mode
    /// All processes of the job.
    public let world: Communicator
    /// The ranks each layer is split over: the world under tensor parallelism, this process
    /// alone under attention data parallelism.
    public let tensorGroup: Communicator
    /// The layer-shifted AllReduce + residual + RMSNorm fusion, resolved from
    /// `fuse_allreduce_norm` (off by itself when there is no tensor-parallel reduction).
    public var fusedAllReduceNorm: Bool
    /// Why fusion is on or off, for run headers.
    public let fusionReason: String

    public init(world: Communicator, mode: Mode = .tensorParallel, fuse: FuseAllReduceNorm = .auto) {
        self.world = world
        self.mode = mode
        tensorGroup = mode == .tensorParallel ? world : SingleProcess()
        (fusedAllReduceNorm, fusionReason) = fuse.resolve(
            tpSize: world.size, attentionDataParallel: mode == .attentionDataParallel)
    }

    /// The sizes and ranks alone, for the shard plan.
    public var layout: ParallelLayout {
        switch mode {
        case .tensorParallel: return .tensorParallel(size: world.size, rank: world.rank)
        case .attentionDataParallel: return .attentionDataParallel(size: world.size, rank: world.rank)
        }
    }

    /// Whether the requests of the run are divided between the ranks (each rank decides its
    /// own tokens) rather than run by all of them together (rank 0 decides).
    public var splitsRequests: Bool { mode == .attentionDataParallel }

    /// Whether request `index` of a run's input list is served by this rank.
    public func serves(request index: Int) -> Bool {
        !splitsRequests || index % world.size == world.rank
    }
}

/// Group sizes and this process's place in them: what a `ShardPlan` needs, without the
/// communicators (so plans can be built and tested for any rank).
public struct ParallelLayout: Sendable, Equatable {
    /// Ranks a layer is split over, and this rank's index among them.
    public let tensorSize: Int
    public let tensorRank: Int
    /// Ranks the routed experts are divided between (whole experts per rank), and this rank's index.
    public let expertSize: Int
    public let expertRank: Int

    public static func tensorParallel(size: Int, rank: Int) -> ParallelLayout {
        ParallelLayout(tensorSize: size, tensorRank: rank, expertSize: 1, expertRank: 0)
    }

    public static func attentionDataParallel(size: Int, rank: Int) -> ParallelLayout {
        ParallelLayout(tensorSize: 1, tensorRank: 0, expertSize: size, expertRank: rank)
    }

    public static let single = tensorParallel(size: 1, rank: 0)
}
