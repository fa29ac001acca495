/// The collectives nemotron-run needs between tensor-parallel ranks. Called only from the block
/// boundary (reductions) and the generator (token broadcast), so the order of collectives is the
/// same on every rank. Two conformers: `SingleProcess` here and the MPI one in NemotronMPI.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// In-place sum of `count` floats over all ranks; every rank gets bit-identical results.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Rank `root`'s `count` integers copied to every rank.
    func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int)
    /// Concatenates each rank's `counts[rank]` floats on `root` (`output` used only there).
    func gather(_ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int], root: Int)
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }
}

/// One process: every collective is the identity.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func broadcast(_ buffer: UnsafeMutablePointer<Int32>, count: Int, root: Int) {}
    public func gather(_ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, counts: [Int], root: Int) {
        if output != UnsafeMutablePointer(mutating: input) { output.update(from: input, count: count) }
    }
}
