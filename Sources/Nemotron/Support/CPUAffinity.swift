import CKernels
import Foundation

/// Which CPU each compute thread of this process runs on, when asked (`NEMOTRON_PIN=1`).
/// By default the OS places every thread: on the 16-core host of the `device` tool (a VM) pinned
/// threads ran a 1 × 16 decode at 10-13 tokens/s on some machines against 49 unpinned in the same
/// call (a slowed CPU holds its pinned thread's share at every barrier), and keeping each rank's
/// workers within a block of CPUs collapsed 4 × 4 decode to 23-33 against 71-77; unplaced threads
/// were never far from the best placement (0.74 B decode, tokens/s, one call each: 1 × 16 73 / 71
/// against 66 pinned, 4 × 4 71 / 77 against 82 / 77).
///
/// With `NEMOTRON_PIN=1`:
/// - When the process was given a subset of the machine's CPUs (mpirun `--bind-to core` with
///   `--map-by slot:PE=n`, or `taskset`/`numactl`), thread i runs on the i-th CPU of that set.
/// - When it may run anywhere (one process, or mpirun `--bind-to none`), the ranks of this node
///   take consecutive blocks of `threads` CPUs by their node-local rank (Open MPI's
///   `OMPI_COMM_WORLD_LOCAL_RANK`), so ranks never share a core.
/// - No pinning when there are more threads than CPUs to go round.
/// The thread that creates the pool (participant 0) is not pinned; its CPU is the one left free
/// for it.
public enum CPUAffinity {
    /// The CPUs for `threads` compute threads of this process, or nil for no pinning.
    public static func plan(threads: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> [Int]?
    {
        guard environment["NEMOTRON_PIN"] == "1" else { return nil }
        let allowed = allowedCPUs()
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard !allowed.isEmpty, threads >= 1 else { return nil }
        if allowed.count < online {
            guard threads <= allowed.count else { return nil }
            return Array(allowed.prefix(threads))
        }
        let localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init) ?? 0
        let localSize = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
        guard threads * localSize <= allowed.count else { return nil }
        return Array(allowed[localRank * threads..<(localRank + 1) * threads])
    }

    /// The CPUs this process may run on, ascending.
    static func allowedCPUs() -> [Int] {
        var cpus = [Int32](repeating: 0, count: 4096)
        let count = Int(ck_allowed_cpus(&cpus, Int32(cpus.count)))
        return cpus.prefix(count).map(Int.init)
    }

    /// Pins the calling thread to `cpu`.
    static func pinCurrentThread(to cpu: Int) {
        _ = ck_pin_current_thread(Int32(cpu))
    }
}
