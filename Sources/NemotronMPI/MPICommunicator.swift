import CMPI
import Nemotron

/// `Communicator` over MPI_COMM_WORLD: the only Swift file that imports CMPI. MPI is initialised
/// once per process (a singleton world of size 1 without mpirun) with MPI_THREAD_FUNNELED: only
/// the main thread calls MPI, worker threads only compute.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public static let world = MPICommunicator()

    public let rank: Int
    public let size: Int

    private init() {
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided)
        var rank: Int32 = 0, size: Int32 = 1
        MPI_Comm_rank(cmpi_comm_world(), &rank)
        MPI_Comm_size(cmpi_comm_world(), &size)
        self.rank = Int(rank)
        self.size = Int(size)
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        MPI_Allreduce(cmpi_in_place(), buffer, Int32(count), cmpi_float(), cmpi_sum(), cmpi_comm_world())
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int) {
        MPI_Bcast(buffer, Int32(count), cmpi_int32(), Int32(root), cmpi_comm_world())
    }

    public func gather(_ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int], root: Int) {
        var counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: counts.count)
        for i in 1..<max(counts.count, 1) { displacements[i] = displacements[i - 1] + counts32[i - 1] }
        MPI_Gatherv(input, Int32(count), cmpi_float(), output, &counts32, &displacements, cmpi_float(), Int32(root), cmpi_comm_world())
    }

    public func allReduceMax(_ value: Int) -> Int {
        var local = Int64(value), result: Int64 = 0
        MPI_Allreduce(&local, &result, 1, cmpi_int64(), cmpi_max(), cmpi_comm_world())
        return Int(result)
    }

    public func gather(bytes: [UInt8], root: Int) -> [[UInt8]] {
        var count = Int32(bytes.count)
        var counts = [Int32](repeating: 0, count: size)
        MPI_Gather(&count, 1, cmpi_int32(), &counts, 1, cmpi_int32(), Int32(root), cmpi_comm_world())
        var displacements = [Int32](repeating: 0, count: size)
        for i in 1..<max(size, 1) { displacements[i] = displacements[i - 1] + counts[i - 1] }
        var all = [UInt8](repeating: 0, count: rank == root ? Int(counts.reduce(0, +)) : 0)
        var mine = bytes
        MPI_Gatherv(&mine, count, cmpi_byte(), &all, &counts, &displacements, cmpi_byte(), Int32(root), cmpi_comm_world())
        guard rank == root else { return [] }
        return (0..<size).map { Array(all[Int(displacements[$0])..<Int(displacements[$0] + counts[$0])]) }
    }

    /// Ends MPI; call once before a normal exit.
    public func finalize() {
        MPI_Finalize()
    }
}
