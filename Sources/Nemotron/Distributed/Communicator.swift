/// The collectives nemotron-run needs between ranks. A forward pass issues them only through
/// `ForwardCollectives`, the scheduler only through `StepCollectives`, start-up through
/// `agreeing`, and the bench and inspect reports through `gather(text:)` after their run, so
/// the order of collectives is the same on every rank and can be read in those places. Two conformers: `SingleProcess`
/// here and the MPI one in NemotronMPI.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// In-place sum of `count` floats over all ranks; every rank gets bit-identical results.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// The fused block boundary as one collective: `residual += Σ_ranks partial`, then
    /// `normed = RMSNorm(residual) · weight` per row of `width` (the norm is the collective's
    /// epilogue); with `quantized`, whose rows are `normed`'s, each normed row is also quantized
    /// to int8 in the same epilogue. `partial` may be overwritten.
    func allReduceAddNorm(
        _ partial: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
        rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>, quantized: QuantizedRows?)
    /// Rank `root`'s `count` integers copied to every rank.
    func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int)
    /// Concatenates each rank's `counts[rank]` floats on `root` (`output` used only there).
    func gather(
        _ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int], root: Int)
    /// The largest of every rank's value, on every rank.
    func allReduceMax(_ value: Int) -> Int
    /// Every rank's value, in rank order, on every rank.
    func allGather(_ value: Int) -> [Int]
    /// Concatenates each rank's `counts[rank]` floats, in rank order, into `output` on every rank.
    func allGather(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int])
    /// Sums `input` (Σ counts floats) over the ranks and leaves rank r's part (`counts[r]`
    /// floats, in rank order) in its `output`.
    func reduceScatter(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int])
    /// Every rank's bytes, in rank order, on `root`; other ranks get an empty array.
    func gather(bytes: [UInt8], root: Int) -> [[UInt8]]
    /// Rank `root`'s bytes on every rank (the others' `bytes` are ignored). A rank may wait here
    /// long (a server's ranks wait for rank 0's next control message while it is idle), so a
    /// waiting rank sleeps between polls instead of spinning.
    func broadcast(bytes: [UInt8], root: Int) -> [UInt8]
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Reduction, then the residual add, norm (and quantization) in one pass per row.
    public func allReduceAddNorm(
        _ partial: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
        rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>, quantized: QuantizedRows?
    ) {
        allReduceSum(partial, count: rows * width)
        ResidualNorm.addAndNormalizeEachRow(
            partial, residual: residual, weight: weight, eps: eps, rows: rows, width: width, into: normed,
            quantized: quantized)
    }

    /// Every rank's text, in rank order, on rank 0.
    public func gather(text: String) -> [String] {
        gather(bytes: Array(text.utf8), root: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Runs `body` on every rank and agrees on the outcome before any rank goes on to a
    /// collective, so an error on one rank cannot leave the others waiting. Rank 0 rethrows the
    /// first failing rank's error (its own if it failed); the others throw `peerFailure`.
    public func agreeing<T>(_ body: () throws -> T) throws -> T {
        var outcome: Result<T, Error>
        do { outcome = .success(try body()) } catch { outcome = .failure(error) }
        var failed = false
        if case .failure = outcome { failed = true }
        guard allReduceMax(failed ? 1 : 0) > 0 else { return try outcome.get() }
        let messages = gather(text: failed ? "\(outcome.failureValue.map { "\($0)" } ?? "")" : "")
        if case .failure(let error) = outcome, isRoot { throw error }
        guard isRoot, let index = messages.firstIndex(where: { !$0.isEmpty }) else { throw NemotronError.peerFailure }
        throw NemotronError.parallel(reason: "rank \(index): \(messages[index])")
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// One process: every collective is the identity.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int) {}
    public func gather(
        _ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int], root: Int
    ) {
        if output != UnsafeMutablePointer(mutating: input) { output.update(from: input, count: count) }
    }
    public func allReduceMax(_ value: Int) -> Int { value }
    public func allGather(_ value: Int) -> [Int] { [value] }
    public func allGather(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
        if output != UnsafeMutablePointer(mutating: input) { output.update(from: input, count: counts[0]) }
    }
    public func reduceScatter(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, counts: [Int]) {
        if output != UnsafeMutablePointer(mutating: input) { output.update(from: input, count: counts[0]) }
    }
    public func gather(bytes: [UInt8], root: Int) -> [[UInt8]] { [bytes] }
    public func broadcast(bytes: [UInt8], root: Int) -> [UInt8] { bytes }
}
