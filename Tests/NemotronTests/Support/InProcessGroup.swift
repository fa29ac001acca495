import Foundation

@testable import Nemotron

/// `size` ranks as threads of the test process, with real collectives over shared memory and
/// pthread barriers: lets a test run per-rank models side by side without MPI. Sums run in
/// rank order on every member, so results are bit-identical across members, as with MPI.
final class InProcessGroup: @unchecked Sendable {
    let size: Int
    private var barrier = pthread_barrier_t()
    private var floats: [UnsafeMutablePointer<Float>?]
    private var counts: [Int]
    private var ints: [Int32]
    private var bytes: [[UInt8]]

    init(size: Int) {
        self.size = size
        floats = Array(repeating: nil, count: size)
        counts = Array(repeating: 0, count: size)
        ints = Array(repeating: 0, count: size)
        bytes = Array(repeating: [], count: size)
        pthread_barrier_init(&barrier, nil, UInt32(size))
    }

    deinit { pthread_barrier_destroy(&barrier) }

    /// Runs `body(rank, communicator)` on `size` threads and returns the results in rank order.
    func run<T>(_ size: Int, _ body: @escaping (Int, Communicator) -> T) -> [T] {
        precondition(size == self.size)
        let results = UnsafeMutablePointer<T?>.allocate(capacity: size)
        results.initialize(repeating: nil, count: size)
        defer { results.deallocate() }
        let done = DispatchGroup()
        let shared = UncheckedSendable((results, body))
        for rank in 0..<size {
            done.enter()
            let thread = Thread { [self] in
                let (results, body) = shared.value
                results[rank] = body(rank, Member(rank: rank, group: self))
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return (0..<size).map { results[$0]! }
    }

    fileprivate func wait() { pthread_barrier_wait(&barrier) }

    fileprivate final class Member: Communicator {
        let rank: Int
        let group: InProcessGroup
        var size: Int { group.size }

        init(rank: Int, group: InProcessGroup) {
            self.rank = rank
            self.group = group
        }

        func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
            group.floats[rank] = buffer
            group.wait()
            let sum = (0..<count).map { i in (0..<size).reduce(Float(0)) { $0 + group.floats[$1]![i] } }
            group.wait()
            buffer.update(from: sum, count: count)
            group.wait()
        }

        func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int) {
            if rank == root { group.bytes[root] = Array(UnsafeRawBufferPointer(start: buffer, count: count * 4)) }
            group.wait()
            if rank != root {
                group.bytes[root].withUnsafeBytes {
                    UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress!, byteCount: count * 4)
                }
            }
            group.wait()
        }

        func gather(
            _ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int],
            root: Int
        ) {
            group.floats[rank] = UnsafeMutablePointer(mutating: input)
            group.counts[rank] = count
            group.wait()
            if rank == root {
                var offset = 0
                for r in 0..<size {
                    (output + offset).update(from: group.floats[r]!, count: group.counts[r])
                    offset += group.counts[r]
                }
            }
            group.wait()
        }

        func allReduceMax(_ value: Int) -> Int {
            group.ints[rank] = Int32(value)
            group.wait()
            let result = Int(group.ints.max()!)
            group.wait()
            return result
        }

        func allGather(_ value: Int) -> [Int] {
            group.ints[rank] = Int32(value)
            group.wait()
            let all = group.ints.map(Int.init)
            group.wait()
            return all
        }

        func allGather(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
            group.floats[rank] = UnsafeMutablePointer(mutating: input)
            group.wait()
            var offset = 0
            for r in 0..<size {
                (output + offset).update(from: group.floats[r]!, count: counts[r])
                offset += counts[r]
            }
            group.wait()
        }

        func reduceScatter(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
            group.floats[rank] = UnsafeMutablePointer(mutating: input)
            group.wait()
            let offset = counts[..<rank].reduce(0, +)
            for i in 0..<counts[rank] { output[i] = (0..<size).reduce(Float(0)) { $0 + group.floats[$1]![offset + i] } }
            group.wait()
        }

        func gather(bytes: [UInt8], root: Int) -> [[UInt8]] {
            group.bytes[rank] = bytes
            group.wait()
            let result = rank == root ? group.bytes : []
            group.wait()
            return result
        }

        func broadcast(bytes: [UInt8], root: Int) -> [UInt8] {
            if rank == root { group.bytes[root] = bytes }
            group.wait()
            let result = group.bytes[root]
            group.wait()
            return result
        }
    }
}

/// A group member's place (rank, size) before its group exists: a model can be loaded for it,
/// and any collective traps.
final class Placeholder: Communicator {
    let rank: Int
    let size: Int
    init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) { unjoined() }
    func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int) { unjoined() }
    func gather(
        _ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int], root: Int
    ) { unjoined() }
    func allReduceMax(_ value: Int) -> Int { unjoined() }
    func allGather(_ value: Int) -> [Int] { unjoined() }
    func allGather(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
        unjoined()
    }
    func reduceScatter(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
        unjoined()
    }
    func gather(bytes: [UInt8], root: Int) -> [[UInt8]] { unjoined() }
    func broadcast(bytes: [UInt8], root: Int) -> [UInt8] { unjoined() }
    private func unjoined() -> Never {
        preconditionFailure("a placeholder communicator was used; join the model to its group first")
    }
}

extension NemotronH {
    /// This model, now running its collectives on `member`, with the fusion as given.
    func joining(_ member: Communicator, fused: Bool = true) -> NemotronH {
        parallelism = Parallelism(world: member, mode: parallelism.mode, fuse: fused ? .on : .off)
        return self
    }
}
