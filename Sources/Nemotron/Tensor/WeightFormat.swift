/// How a weight matrix's elements are stored: the element encoding, the block of consecutive
/// inputs (along a row) that is one unit of storage and scaling, and where the scales live.
/// Today's formats are plain floats (block 1, no scales); quantized formats add cases here with
/// per-tensor or per-block scales and packed sub-byte elements, and a kernel family in MatMul.
public enum WeightFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32
    case bf16
    case f16

    /// The plain format stored as safetensors `element`, or nil when that type cannot be a
    /// plain weight.
    public init?(element: ElementType) {
        switch element {
        case .f32: self = .f32
        case .bf16: self = .bf16
        case .f16: self = .f16
        case .f8e4m3, .i64, .i32, .i8, .u8: return nil
        }
    }

    /// Element types a checkpoint may use for plain weights, for error messages.
    public static let plainElements: [ElementType] = [.f32, .bf16, .f16]

    /// Consecutive inputs of a row stored and scaled together: a column cut must fall on a
    /// multiple of it.
    public var blockSize: Int { 1 }

    /// Bytes taken by `elements` consecutive inputs of one row (a multiple of `blockSize`).
    public func bytes(elements: Int) -> Int {
        switch self {
        case .f32: return elements * 4
        case .bf16, .f16: return elements * 2
        }
    }

    /// Where the scales of this format live.
    public var scaleLayout: ScaleLayout { .none }

    public var description: String { rawValue }
}

/// Where a format keeps its scales.
public enum ScaleLayout: Sendable, Equatable {
    /// Values are stored as they are.
    case none
    /// One f32 scale for the whole tensor.
    case perTensor
    /// One scale of `element` per block of `WeightFormat.blockSize` inputs: `[rows, cols / blockSize]`.
    case perBlock(element: ElementType)
}
