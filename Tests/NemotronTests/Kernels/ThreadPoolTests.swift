import Foundation
import Synchronization
import Testing

@testable import Nemotron

@Suite("Thread pool and CPU affinity")
struct ThreadPoolTests {
    @Test("every part of every job runs exactly once, across sleeps and back-to-back jobs", arguments: [2, 3, 4])
    func jobs(threads: Int) {
        let pool = ThreadPool(threads: threads, pin: false)
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: threads)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: threads)
        let shared = UncheckedSendable(counts)
        for job in 0..<3000 {
            // Every 500 jobs, idle long enough for the workers to fall asleep.
            if job % 500 == 0 { usleep(2000) }
            pool.forParts(threads) { part in shared.value[part] += 1 }
        }
        #expect((0..<threads).allSatisfy { counts[$0] == 3000 })
    }

    @Test(
        "NEMOTRON_PIN=1: ranks of one node take disjoint CPU blocks, no pinning when oversubscribed; unset: none")
    func plan() {
        let allowed = CPUAffinity.allowedCPUs()
        #expect(!allowed.isEmpty)
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard allowed.count == online, online >= 2 else { return }
        let pin = ["NEMOTRON_PIN": "1"]
        #expect(CPUAffinity.plan(threads: 1, environment: pin) == [allowed[0]])
        #expect(
            CPUAffinity.plan(
                threads: 1,
                environment: pin.merging(["OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"]) { $1 })
                == [allowed[1]])
        #expect(CPUAffinity.plan(threads: online + 1, environment: pin) == nil)
        #expect(CPUAffinity.plan(threads: 1, environment: [:]) == nil)
        #expect(CPUAffinity.plan(threads: 1, environment: ["NEMOTRON_PIN": "0"]) == nil)
    }
}
