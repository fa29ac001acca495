import Nemotron

/// The `ring` strategy over MPI point-to-point messages, so it works across machines: a ring
/// reduce-scatter in which rank r ends up owning chunk (r + 1) mod n, then a ring all-gather.
/// Fused, the owner applies the residual add and norm to its rows before the all-gather, which
/// then carries normed and residual rows. Each chunk is summed along one chain and copied
/// everywhere, so every rank gets identical bits.
final class RingReducer {
    private let communicator: MPICommunicator
    private var scratch: UnsafeMutablePointer<Float>
    private var scratchCount = 0

    init(communicator: MPICommunicator) {
        self.communicator = communicator
        scratch = .allocate(capacity: 1)
    }

    deinit { scratch.deallocate() }

    private var rank: Int { communicator.rank }
    private var size: Int { communicator.size }
    private var right: Int { (rank + 1) % size }
    private var left: Int { (rank + size - 1) % size }

    func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        let chunks = (0..<size).map { Partition.part(count, size, $0) }
        reduceScatter(buffer, chunks: chunks)
        allGather([buffer], chunks: chunks)
    }

    func addNorm(
        _ partial: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
        rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>, quantized: QuantizedRows?
    ) {
        let rowChunks = (0..<size).map { Partition.part(rows, size, $0) }
        let chunks = rowChunks.map { $0.lowerBound * width..<$0.upperBound * width }
        reduceScatter(partial, chunks: chunks)
        let owned = rowChunks[(rank + 1) % size]
        let offset = owned.lowerBound * width
        ResidualNorm.addAndNormalizeEachRow(
            partial + offset, residual: residual + offset, weight: weight, eps: eps, rows: owned.count,
            width: width, into: normed + offset)
        allGather([normed, residual], chunks: chunks)
        quantized?.quantize(rows: 0..<rows)
    }

    /// After n − 1 steps, rank r holds the full sum of chunk (r + 1) mod n.
    private func reduceScatter(_ buffer: UnsafeMutablePointer<Float>, chunks: [Range<Int>]) {
        reserve(chunks.map(\.count).max() ?? 0)
        for step in 0..<size - 1 {
            let send = chunks[(rank - step + 2 * size) % size]
            let receive = chunks[(rank - step - 1 + 2 * size) % size]
            communicator.sendReceive(
                buffer + send.lowerBound, count: send.count, to: right, scratch, count: receive.count, from: left)
            let target = buffer + receive.lowerBound
            for i in 0..<receive.count { target[i] = scratch[i] + target[i] }
        }
    }

    /// Passes each owned chunk around the ring, for every buffer given.
    private func allGather(_ buffers: [UnsafeMutablePointer<Float>], chunks: [Range<Int>]) {
        for step in 0..<size - 1 {
            let send = chunks[(rank + 1 - step + 2 * size) % size]
            let receive = chunks[(rank - step + 2 * size) % size]
            for buffer in buffers {
                communicator.sendReceive(
                    buffer + send.lowerBound, count: send.count, to: right,
                    buffer + receive.lowerBound, count: receive.count, from: left)
            }
        }
    }

    private func reserve(_ count: Int) {
        guard count > scratchCount else { return }
        scratch.deallocate()
        scratch = .allocate(capacity: count)
        scratchCount = count
    }
}
