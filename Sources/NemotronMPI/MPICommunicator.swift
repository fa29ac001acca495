import CMPI
import Foundation
import Nemotron

/// `Communicator` over MPI_COMM_WORLD: the only Swift file that imports CMPI. MPI is initialised
/// once per process (a singleton world of size 1 without mpirun) with MPI_THREAD_FUNNELED: only
/// the main thread calls MPI, worker threads only compute.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public static let world = MPICommunicator()

    public let rank: Int
    public let size: Int
    /// Whether every rank runs on this node (shared-memory strategies need it). Found once at
    /// start-up, in `init`, by a collective every rank issues there.
    public let isSingleNode: Bool
    /// How block-boundary reductions run; set on every rank with `use(_:)`.
    public private(set) var strategy: AllReduceStrategy = .mpi
    private var shared: SharedMemoryReducer?
    private var ring: RingReducer?

    private init() {
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided)
        var rank: Int32 = 0
        var size: Int32 = 1
        MPI_Comm_rank(cmpi_comm_world(), &rank)
        MPI_Comm_size(cmpi_comm_world(), &size)
        self.rank = Int(rank)
        self.size = Int(size)
        var node: MPI_Comm?
        MPI_Comm_split_type(cmpi_comm_world(), Int32(MPI_COMM_TYPE_SHARED), rank, cmpi_info_null(), &node)
        var nodeSize: Int32 = 0
        MPI_Comm_size(node, &nodeSize)
        MPI_Comm_free(&node)
        isSingleNode = nodeSize == size
    }

    /// Selects the reduction strategy (collective: every rank calls it with the same value).
    /// Shared-memory strategies need every rank on one node.
    public func use(_ strategy: AllReduceStrategy) throws {
        if strategy.needsSharedMemory && !isSingleNode {
            throw NemotronError.configValue(
                path: "run settings", key: "allreduce_strategy", value: strategy.rawValue,
                expected: "ring, mpi or auto: this job spans several nodes and \(strategy.rawValue) needs shared memory"
            )
        }
        self.strategy = strategy
        if size > 1 && (strategy.needsSharedMemory || (strategy == .auto && isSingleNode)) && shared == nil {
            shared = SharedMemoryReducer(communicator: self)
        }
        if size > 1 && (strategy == .ring || strategy == .auto) && ring == nil {
            ring = RingReducer(communicator: self)
        }
    }

    /// The strategy used for a message of `count` floats.
    private func resolved(_ count: Int) -> AllReduceStrategy {
        strategy == .auto
            ? .choice(bytes: count * MemoryLayout<Float>.size, ranks: size, singleNode: isSingleNode) : strategy
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        switch resolved(count) {
        case .oneshot: shared!.oneShotSum(buffer, count: count)
        case .twoshot: shared!.twoShotSum(buffer, count: count)
        case .ring: ring!.sum(buffer, count: count)
        case .mpi, .auto:
            MPI_Allreduce(cmpi_in_place(), buffer, Int32(count), cmpi_float(), cmpi_sum(), cmpi_comm_world())
        }
    }

    public func allReduceAddNorm(
        _ partial: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float],
        eps: Float, rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>, quantized: QuantizedRows?
    ) {
        switch size > 1 ? resolved(rows * width) : .mpi {
        case .oneshot:
            shared!.oneShotAddNorm(
                partial, residual: residual, weight: weight, eps: eps, rows: rows, width: width, into: normed,
                quantized: quantized)
        case .twoshot:
            shared!.twoShotAddNorm(
                partial, residual: residual, weight: weight, eps: eps, rows: rows, width: width, into: normed,
                quantized: quantized)
        case .ring:
            ring!.addNorm(
                partial, residual: residual, weight: weight, eps: eps, rows: rows, width: width, into: normed,
                quantized: quantized)
        case .mpi, .auto:
            allReduceSum(partial, count: rows * width)
            ResidualNorm.addAndNormalizeEachRow(
                partial, residual: residual, weight: weight, eps: eps, rows: rows, width: width, into: normed,
                quantized: quantized)
        }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int) {
        MPI_Bcast(buffer, Int32(count), cmpi_int32(), Int32(root), cmpi_comm_world())
    }

    public func gather(
        _ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int], root: Int
    ) {
        var counts32 = counts.map { Int32($0) }
        var displacements = Self.displacements(counts32)
        MPI_Gatherv(
            input, Int32(count), cmpi_float(), output, &counts32, &displacements, cmpi_float(), Int32(root),
            cmpi_comm_world())
    }

    public func allReduceMax(_ value: Int) -> Int {
        var local = Int64(value)
        var result: Int64 = 0
        MPI_Allreduce(&local, &result, 1, cmpi_int64(), cmpi_max(), cmpi_comm_world())
        return Int(result)
    }

    public func allGather(_ value: Int) -> [Int] {
        var local = Int64(value)
        var all = [Int64](repeating: 0, count: size)
        MPI_Allgather(&local, 1, cmpi_int64(), &all, 1, cmpi_int64(), cmpi_comm_world())
        return all.map(Int.init)
    }

    public func allGather(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
        var counts32 = counts.map(Int32.init)
        var displacements = Self.displacements(counts32)
        MPI_Allgatherv(
            input, counts32[rank], cmpi_float(), output, &counts32, &displacements, cmpi_float(), cmpi_comm_world())
    }

    public func reduceScatter(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
        var counts32 = counts.map(Int32.init)
        MPI_Reduce_scatter(input, output, &counts32, cmpi_float(), cmpi_sum(), cmpi_comm_world())
    }

    public func gather(bytes: [UInt8], root: Int) -> [[UInt8]] {
        var count = Int32(bytes.count)
        var counts = [Int32](repeating: 0, count: size)
        MPI_Gather(&count, 1, cmpi_int32(), &counts, 1, cmpi_int32(), Int32(root), cmpi_comm_world())
        var displacements = Self.displacements(counts)
        var all = [UInt8](repeating: 0, count: rank == root ? Int(counts.reduce(0, +)) : 0)
        var mine = bytes
        MPI_Gatherv(
            &mine, count, cmpi_byte(), &all, &counts, &displacements, cmpi_byte(), Int32(root), cmpi_comm_world())
        guard rank == root else { return [] }
        return (0..<size).map { Array(all[Int(displacements[$0])..<Int(displacements[$0] + counts[$0])]) }
    }

    /// The length goes first through a non-blocking broadcast that this rank polls, yielding the
    /// core between polls and sleeping once it has waited 20 ms (Open MPI's blocking calls spin,
    /// which would keep an idle server's ranks at 100% CPU); then the bytes, in one blocking
    /// broadcast. An idle rank costs about 3% of a core (rank 0 sends a message every second).
    public func broadcast(bytes: [UInt8], root: Int) -> [UInt8] {
        guard size > 1 else { return bytes }
        var count = Int64(rank == root ? bytes.count : 0)
        var request: MPI_Request?
        MPI_Ibcast(&count, 1, cmpi_int64(), Int32(root), cmpi_comm_world(), &request)
        var done: Int32 = 0
        let start = DispatchTime.now().uptimeNanoseconds
        while true {
            MPI_Test(&request, &done, cmpi_status_ignore())
            if done != 0 { break }
            // Polling that yields the core to any other runnable thread (ranks of a busy server
            // arrive within a step of each other), then 2 ms naps once the wait passes 20 ms (an
            // idle server).
            let waited = DispatchTime.now().uptimeNanoseconds - start
            if waited > 20_000_000 { usleep(2_000) } else { sched_yield() }
        }
        var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        if count > 0 { MPI_Bcast(&buffer, Int32(count), cmpi_byte(), Int32(root), cmpi_comm_world()) }
        return buffer
    }

    // MARK: - Primitives for our own collectives (AllReduceStrategies)

    public func barrier() {
        MPI_Barrier(cmpi_comm_world())
    }

    /// Sends `sendCount` floats to `destination` while receiving `receiveCount` from `source`.
    public func sendReceive(
        _ send: UnsafePointer<Float>, count sendCount: Int, to destination: Int,
        _ receive: UnsafeMutablePointer<Float>, count receiveCount: Int, from source: Int
    ) {
        MPI_Sendrecv(
            send, Int32(sendCount), cmpi_float(), Int32(destination), 0,
            receive, Int32(receiveCount), cmpi_float(), Int32(source), 0, cmpi_comm_world(), cmpi_status_ignore())
    }

    /// A window of `bytes` per rank in memory every rank of this node maps (MPI-3 shared
    /// window). Needs `isSingleNode`. Open MPI backs it with a file it removes itself, also
    /// when a rank is killed (checked: /dev/shm is left empty).
    public func sharedWindow(bytes: Int) -> SharedWindow {
        var node: MPI_Comm?
        MPI_Comm_split_type(cmpi_comm_world(), Int32(MPI_COMM_TYPE_SHARED), Int32(rank), cmpi_info_null(), &node)
        var base: UnsafeMutableRawPointer?
        var window: MPI_Win?
        MPI_Win_allocate_shared(MPI_Aint(bytes), 64, cmpi_info_null(), node, &base, &window)
        let segments = (0..<size).map { peer -> UnsafeMutableRawPointer in
            var size: MPI_Aint = 0
            var unit: Int32 = 0
            var pointer: UnsafeMutableRawPointer?
            MPI_Win_shared_query(window, Int32(peer), &size, &unit, &pointer)
            return pointer!
        }
        MPI_Barrier(cmpi_comm_world())
        return SharedWindow(segments: segments) {
            var window = window
            var node = node
            MPI_Win_free(&window)
            MPI_Comm_free(&node)
        }
    }

    /// Where each rank's part starts in a concatenation of parts of `counts` elements.
    private static func displacements(_ counts: [Int32]) -> [Int32] {
        var offsets = [Int32](repeating: 0, count: counts.count)
        for i in counts.indices.dropFirst() { offsets[i] = offsets[i - 1] + counts[i - 1] }
        return offsets
    }

    /// Ends MPI; call once before a normal exit.
    public func finalize() {
        shared = nil
        ring = nil
        MPI_Finalize()
    }
}
