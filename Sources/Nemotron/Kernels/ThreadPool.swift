import CKernels
import Foundation
import Synchronization

/// Intra-rank threading for the compute loops: `threads − 1` persistent workers plus the
/// calling thread, part `i` always run by participant `i`. Workers spin briefly between jobs
/// (decode issues ~75 parallel matmuls per token back to back), then sleep on a condition
/// variable. Measured: `DispatchQueue.concurrentPerform` often ran both halves on the caller
/// (its worker woke late), streaming 33 GB/s where fixed assignment streams 50 GB/s.
/// Participant i runs on CPU `cpus[i]` when the pool is pinned (`NEMOTRON_PIN=1`, `CPUAffinity`). A job start
/// wakes sleeping workers only when some are asleep, and a worker that saw the job while
/// spinning takes it without the mutex, so back-to-back jobs cost no system call.
/// Tensor parallelism across ranks is separate (Distributed/).
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    /// The CPU of each participant (the caller's is left to the OS, see `init`), or nil when unpinned.
    public let cpus: [Int]?
    /// Set when not every worker could be started (the system's thread or memory limit): the
    /// pool then runs with the workers it has, and `Engine` reports this error instead of running.
    public let startFailure: NemotronError?
    private let state: State

    /// Largest thread count a pool accepts: 8 per CPU of this machine (RunConfig checks
    /// `threads` against it, so the error names the key).
    public static var maxThreads: Int { 8 * ProcessInfo.processInfo.activeProcessorCount }

    /// `stackSize` is each worker's stack, in bytes.
    public init(threads: Int, pin: Bool = true, stackSize: Int = 1 << 20) {
        let requested = max(1, threads)
        state = State()
        var plannedCPUs = pin ? CPUAffinity.plan(threads: requested) : nil
        // The calling thread (participant 0) stays unpinned: it is the caller's own thread (the
        // main thread, or a test's), which outlives the pool.
        var started = 1
        var failure: NemotronError?
        for index in 1..<requested {
            let code = Self.startWorker(index: index, cpu: plannedCPUs?[index], state: state, stackSize: stackSize)
            guard code == 0 else {
                // Workers only ever run parts below the pool's size, so the ones already
                // started serve a smaller pool and nothing waits for the missing ones.
                failure = .resource(
                    reason:
                        "cannot start \(requested) compute threads: creating thread \(index + 1) failed "
                        + "(\(String(cString: strerror(code)))); lower 'threads' (--threads) or raise the "
                        + "system's limit on threads (ulimit -u, cgroup pids.max)")
                break
            }
            started += 1
        }
        if started < requested { plannedCPUs = plannedCPUs.map { Array($0.prefix(started)) } }
        self.threads = started
        cpus = plannedCPUs
        startFailure = failure
    }

    /// Starts one detached worker with `pthread_create`, whose result is checked (Foundation's
    /// `Thread.start` drops it, and a pool waiting for a worker that never started hangs).
    private static func startWorker(index: Int, cpu: Int?, state: State, stackSize: Int) -> Int32 {
        let context = Unmanaged.passRetained(WorkerContext(index: index, cpu: cpu, state: state))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var code = pthread_attr_setstacksize(&attributes, stackSize)
        if code == 0 {
            var thread = pthread_t()
            code = pthread_create(
                &thread, &attributes,
                { raw in
                    let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                    if let cpu = context.cpu { CPUAffinity.pinCurrentThread(to: cpu) }
                    context.state.work(as: context.index)
                    return nil
                }, context.toOpaque())
        }
        if code != 0 { context.release() }
        return code
    }

    /// What a worker thread is started with.
    private final class WorkerContext {
        let index: Int
        let cpu: Int?
        let state: State
        init(index: Int, cpu: Int?, state: State) {
            self.index = index
            self.cpu = cpu
            self.state = state
        }
    }

    deinit { state.stop() }

    /// Splits `0..<count` into up to `threads` contiguous parts (multiples of `alignment` except
    /// the last, at least `minimumPerThread` items each) and runs `body` on each concurrently.
    func forRanges(_ count: Int, alignment: Int = 1, minimumPerThread: Int = 1, _ body: @escaping (Range<Int>) -> Void)
    {
        let parts = max(1, min(threads, count / max(minimumPerThread, 1)))
        guard parts > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        let units = (count + alignment - 1) / alignment
        state.run(parts: parts) { part in
            let unitRange = Partition.part(units, parts, part)
            let range = min(count, unitRange.lowerBound * alignment)..<min(count, unitRange.upperBound * alignment)
            if !range.isEmpty { body(range) }
        }
    }

    /// Splits `0..<count` into blocks of `block` items that the threads claim one at a time, so
    /// a thread slowed by other load does less of the work (used for memory-bound streaming).
    func forBlocks(_ count: Int, block: Int, _ body: @escaping (Range<Int>) -> Void) {
        forBlocksWithPart(count, block: block) { _, range in body(range) }
    }

    /// As `forBlocks`, also telling `body` which participant (`0..<threads`) runs the block, for
    /// per-thread scratch.
    func forBlocksWithPart(_ count: Int, block: Int, _ body: @escaping (_ part: Int, Range<Int>) -> Void) {
        let blocks = (count + block - 1) / block
        guard threads > 1 && blocks > 1 else {
            if count > 0 { body(0, 0..<count) }
            return
        }
        let counter = BlockCounter()
        forParts(threads) { part in
            while true {
                let b = counter.next()
                guard b < blocks else { return }
                body(part, b * block..<min(count, (b + 1) * block))
            }
        }
    }

    /// Runs `body(part)` for every part in `0..<parts` (at most `threads`), part `i` on participant `i`.
    func forParts(_ parts: Int, _ body: @escaping (Int) -> Void) {
        let parts = max(1, min(parts, threads))
        if parts == 1 { body(0) } else { state.run(parts: parts, body) }
    }

    /// Shared between the caller and the workers (the workers do not keep the pool alive).
    private final class State: @unchecked Sendable {
        private let generation = Atomic<Int>(0)
        private let pending = Atomic<Int>(0)
        /// Workers blocked (or about to block) on the condition variable.
        private let sleepers = Atomic<Int>(0)
        private var parts = 0
        private var job: ((Int) -> Void)?
        private var stopping = false
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// Turns of polling before a worker sleeps: about 100 µs of pauses, plus the yields past the
        /// first 256 turns (each hands the CPU to a waiting thread, if any).
        private let spinLimit = 20_000

        init() {
            pthread_mutex_init(mutex, nil)
            pthread_cond_init(wake, nil)
        }

        deinit {
            pthread_cond_destroy(wake)
            pthread_mutex_destroy(mutex)
            mutex.deallocate()
            wake.deallocate()
        }

        func run(parts: Int, _ body: @escaping (Int) -> Void) {
            job = body
            self.parts = parts
            pending.store(parts - 1, ordering: .relaxed)
            // Sequentially consistent with the sleepers' count: a worker that registers as a
            // sleeper after this load sees the new generation before it waits.
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)
            }
            body(0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                waitPause(spins)
            }
            job = nil
        }

        func stop() {
            pthread_mutex_lock(mutex)
            stopping = true
            parts = 0
            generation.add(1, ordering: .releasing)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)
        }

        func work(as index: Int) {
            var seen = 0
            while true {
                var spins = 0
                while generation.load(ordering: .acquiring) == seen && spins < spinLimit {
                    spins += 1
                    waitPause(spins)
                }
                if generation.load(ordering: .acquiring) == seen {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen && !stopping {
                        pthread_cond_wait(wake, mutex)
                    }
                    sleepers.subtract(1, ordering: .relaxed)
                    pthread_mutex_unlock(mutex)
                }
                // The job's fields were written before the generation was released.
                seen = generation.load(ordering: .acquiring)
                if stopping { return }
                let parts = self.parts
                if index < parts, let job = self.job {
                    job(index)
                    pending.subtract(1, ordering: .releasing)
                }
            }
        }

        /// One turn of a wait: a pause; past the first 256 turns, every 16th turn offers the CPU
        /// to another thread. A waiting thread that shares its CPU with the one it waits for (more
        /// threads than the CPUs the process may use, e.g. under mpirun's default binding of a rank
        /// to one core) otherwise spins out its whole time slice: 2 threads on 1 CPU decoded the
        /// demo model at 47-48 tokens/s against 1600-1800 on 2 CPUs. Short waits never yield.
        @inline(__always) private func waitPause(_ turn: Int) {
            if turn > 256 && turn & 15 == 0 { sched_yield() } else { ck_pause() }
        }
    }
}

/// A shared counter the threads of one `forBlocks` call claim blocks from.
private final class BlockCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

/// Hands a value that is only read, or written at disjoint places, to concurrent workers.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
