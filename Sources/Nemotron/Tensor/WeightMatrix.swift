import CKernels

/// A row-major `[rows, cols]` weight (PyTorch `[out, in]`) in its checkpoint dtype. It points
/// into the memory-mapped file, or into an owned copy when a rank keeps only a slice that is not
/// contiguous in the file. Never widened to f32 as a whole.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let dtype: DType
    public let base: UnsafeRawPointer
    /// Keeps an owned copy alive; nil when `base` points into a mapping the model keeps.
    let owner: OwnedBytes?

    public var byteCount: Int { rows * cols * dtype.byteSize }

    /// Writes row `row` widened to f32 into `out` (`cols` floats).
    public func row(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        widen(base + row * cols * dtype.byteSize, into: out, count: cols)
    }

    /// Widens `count` consecutive rows starting at `first` into `out` (`count·cols` floats).
    func rows(from first: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        widen(base + first * cols * dtype.byteSize, into: out, count: count * cols)
    }

    private func widen(_ source: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, count: Int) {
        switch dtype {
        case .f32: out.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        case .bf16: ck_bf16_to_f32(source.assumingMemoryBound(to: UInt16.self), out, count)
        case .f16: ck_f16_to_f32(source.assumingMemoryBound(to: UInt16.self), out, count)
        case .i64, .i32: preconditionFailure("integer tensors are never weights")
        }
    }
}

/// A heap allocation freed with its last reference.
final class OwnedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(byteCount: Int) { pointer = .allocate(byteCount: max(byteCount, 1), alignment: 64) }
    deinit { pointer.deallocate() }
}
