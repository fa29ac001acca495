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
        "NEMOTRON_PIN=1: ranks of one node take disjoint CPU blocks, no pinning when oversubscribed; unset: none",
        .enabled(
            if: CPUAffinity.allowedCPUs().count == CPUAffinity.onlineCount && CPUAffinity.onlineCount >= 2,
            "needs 2 or more CPUs, all of them allowed to this process"))
    func plan() {
        let allowed = CPUAffinity.allowedCPUs()
        let online = CPUAffinity.onlineCount
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

    @Test("threads: 0 takes the CPUs this process may run on, shared with the node's ranks that may run there")
    func automaticThreads() {
        // (allowed, online, ranks on the node) -> threads
        let cases: [(Int, Int, Int, Int)] = [
            (1, 2, 1, 1),  // mpirun -np 1 binds the rank to one core of two
            (2, 2, 1, 2), (2, 2, 2, 1),  // unbound: the node's CPUs split over its ranks
            (1, 16, 2, 1),  // mpirun -np 2 on 16 cores: each rank bound to one core
            (16, 16, 2, 8), (16, 16, 1, 16),  // --bind-to none; one rank per node (several hosts)
            (8, 16, 4, 4),  // bound to a socket of 8 cores, 2 ranks on each
            (16, 16, 16, 1), (16, 16, 32, 1),  // a rank per core, more ranks than cores
        ]
        for (allowed, online, ranks, threads) in cases {
            #expect(
                CPUAffinity.automaticThreads(allowed: allowed, online: online, localRanks: ranks) == threads,
                "allowed \(allowed), online \(online), \(ranks) rank(s)")
        }
        #expect(CPUAffinity.localRanks(worldSize: 4, environment: [:]) == 4)
        #expect(CPUAffinity.localRanks(worldSize: 4, environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"]) == 2)
    }

    @Test("the run header warns of more threads than CPUs, and notes a binding that idles the node's CPUs")
    func placementNote() throws {
        let over = try #require(
            CPUAffinity.placementNote(threads: 8, automatic: false, allowed: 1, online: 16, localRanks: 2))
        #expect(over.hasPrefix("warning: 8 compute threads share the 1 CPU(s)"))
        #expect(over.contains("--bind-to none") && over.contains("--map-by slot:PE=8"))
        let bound = try #require(
            CPUAffinity.placementNote(threads: 1, automatic: true, allowed: 1, online: 16, localRanks: 2))
        #expect(bound.hasPrefix("note: this process may run on 1 of the node's 16 CPUs"))
        #expect(bound.contains("for 8 a rank") && bound.contains("--map-by slot:PE=8"))
        // Nothing to say: a fair share, or threads the user chose within the CPUs given.
        #expect(CPUAffinity.placementNote(threads: 8, automatic: true, allowed: 16, online: 16, localRanks: 2) == nil)
        #expect(CPUAffinity.placementNote(threads: 1, automatic: true, allowed: 1, online: 2, localRanks: 2) == nil)
        #expect(CPUAffinity.placementNote(threads: 1, automatic: false, allowed: 1, online: 16, localRanks: 2) == nil)
    }
}
