import CKernels
import Foundation
import Synchronization

/// Intra-rank threading for the compute loops: `threads − 1` persistent workers plus the
/// calling thread, part `i` always run by participant `i`. Workers spin briefly between jobs
/// (decode issues ~75 parallel matmuls per token back to back), then sleep on a condition
/// variable. Measured: `DispatchQueue.concurrentPerform` often ran both halves on the caller
/// (its worker woke late), streaming 33 GB/s where fixed assignment streams 50 GB/s.
/// Participant i runs on CPU `cpus[i]` when the pool is pinned (`CPUAffinity`). A job start
/// wakes sleeping workers only when some are asleep, and a worker that saw the job while
/// spinning takes it without the mutex, so back-to-back jobs cost no system call.
/// Tensor parallelism across ranks is separate (Distributed/).
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    /// The CPU of each participant (the caller first), or nil when unpinned.
    public let cpus: [Int]?
    private let state: State
    private var workers: [Thread] = []

    public init(threads: Int, pin: Bool = true) {
        self.threads = max(1, threads)
        cpus = pin ? CPUAffinity.plan(threads: self.threads) : nil
        state = State()
        if let cpus { CPUAffinity.pinCurrentThread(to: cpus[0]) }
        for index in 1..<self.threads {
            let state = self.state
            let cpu = cpus?[index]
            let thread = Thread {
                if let cpu { CPUAffinity.pinCurrentThread(to: cpu) }
                state.work(as: index)
            }
            thread.stackSize = 1 << 20
            thread.start()
            workers.append(thread)
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
        let blocks = (count + block - 1) / block
        guard threads > 1 && blocks > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        let counter = BlockCounter()
        forParts(threads) { _ in
            while true {
                let b = counter.next()
                guard b < blocks else { return }
                body(b * block..<min(count, (b + 1) * block))
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
        /// About 100 µs of polling before a worker sleeps.
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
            while pending.load(ordering: .acquiring) > 0 { spinPause() }
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
                    spinPause()
                    spins += 1
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

        @inline(__always) private func spinPause() {
            ck_pause()
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
