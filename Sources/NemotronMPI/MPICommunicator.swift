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

    /// Ends MPI; call once before a normal exit.
    public func finalize() {
        MPI_Finalize()
    }
}
