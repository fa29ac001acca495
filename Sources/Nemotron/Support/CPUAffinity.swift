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

    /// Compute threads for `threads: 0` (automatic): the CPUs this process may run on, shared
    /// with the ranks of this node expected on the same CPUs (ranks spread evenly over the node's
    /// CPUs). mpirun binds each rank to one core when it starts 2 ranks or fewer and to a socket
    /// or NUMA node above that; `--bind-to none` leaves every CPU to every rank. Counting the
    /// node's CPUs instead put 2 threads on the one core of `mpirun -np 1` on a 2-CPU machine.
    public static func automaticThreads(allowed: Int, online: Int, localRanks: Int) -> Int {
        let ranks = max(1, localRanks)
        let sharing = min(ranks, max(1, (ranks * allowed + online - 1) / max(online, 1)))
        return max(1, allowed / sharing)
    }

    /// A line for the run header when the compute threads and the CPUs this process may run on
    /// disagree: more threads than those CPUs (every step then waits on threads that share a
    /// core), or an automatic count held down by a binding that leaves CPUs of the node idle.
    public static func placementNote(threads: Int, automatic: Bool, allowed: Int, online: Int, localRanks: Int)
        -> String?
    {
        let share = max(1, online / max(1, localRanks))
        if threads > allowed {
            return "warning: \(threads) compute threads share the \(allowed) CPU(s) this process may run on; "
                + "lower 'threads' (--threads) to \(allowed), or give each rank more CPUs "
                + "(mpirun --bind-to none, or --map-by slot:PE=\(threads))"
        }
        if automatic && allowed < share {
            return "note: this process may run on \(allowed) of the node's \(online) CPUs, so it runs \(threads) "
                + "compute thread(s) (mpirun binds each rank to one core when it starts 2 ranks or fewer); "
                + "for \(share) a rank: mpirun --bind-to none, or --map-by slot:PE=\(share)"
        }
        return nil
    }

    /// The number of CPUs this process may run on (at least 1).
    public static var allowedCount: Int { max(1, allowedCPUs().count) }

    /// The machine's online CPUs (at least those this process may run on).
    public static var onlineCount: Int { max(allowedCount, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The ranks on this node: Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, else all `worldSize`.
    public static func localRanks(
        worldSize: Int, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Int {
        environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? worldSize
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
