/// How a weight matrix's elements are stored: the element encoding, the block of consecutive
/// inputs (along a row) that is one unit of storage and scaling, and where the scales live.
/// Every layout is row-major `[rows, cols]` (PyTorch `[out, in]`), blocks run along a row.
///
/// - `f32`, `bf16`, `f16`: the floats, no scales.
/// - `int8`: int8 `[rows, cols]`, f16 scales `[rows, cols/32]`; `w = q · s`.
/// - `int4`: uint8 `[rows, cols/2]`, element 2j in the low nibble of byte j and 2j+1 in the high
///   nibble; a code c in 0...15 means c − 8; f16 scales `[rows, cols/32]`; `w = (c − 8) · s`.
/// - `fp8` (ModelOpt FP8): E4M3FN bytes `[rows, cols]`, one f32 `weight_scale`;
///   `w = e4m3(q) · weight_scale`.
/// - `nvfp4` (ModelOpt NVFP4): uint8 `[rows, cols/2]` of E2M1 codes (nibbles as int4, bit 3 the
///   sign), E4M3 block scales `[rows, cols/16]`, one f32 `weight_scale_2`;
///   `w = e2m1(c) · (e4m3(s) · weight_scale_2)`, the block's scale product rounded to f32 first
///   (ModelOpt's `NVFP4QTensor.dequantize`).
///
/// int8 and int4 are nemotron-run's own (quantized on load or by `nemotron-run quantize`);
/// fp8 and nvfp4 are read as NVIDIA ModelOpt writes them (docs/architecture.md, "Weight formats").
public enum WeightFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32
    case bf16
    case f16
    case int8
    case int4
    case fp8
    case nvfp4

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

    /// Whether values are stored as they are (no scales).
    public var isPlain: Bool { scaleLayout == .none }

    /// Consecutive inputs of a row stored and scaled together: a column cut must fall on a
    /// multiple of it.
    public var blockSize: Int {
        switch self {
        case .f32, .bf16, .f16, .fp8: return 1
        case .int8, .int4: return 32
        case .nvfp4: return 16
        }
    }

    /// Bytes taken by `elements` consecutive inputs of one row (a multiple of `blockSize`).
    public func bytes(elements: Int) -> Int {
        switch self {
        case .f32: return elements * 4
        case .bf16, .f16: return elements * 2
        case .int8, .fp8: return elements
        case .int4, .nvfp4: return elements / 2
        }
    }

    /// Where the scales of this format live.
    public var scaleLayout: ScaleLayout {
        switch self {
        case .f32, .bf16, .f16: return .none
        case .int8, .int4: return .perBlock(element: .f16, tensorScale: false)
        case .fp8: return .perTensor
        case .nvfp4: return .perBlock(element: .f8e4m3, tensorScale: true)
        }
    }

    /// The element type of the data tensor in a checkpoint.
    public var storageElement: ElementType {
        switch self {
        case .f32: return .f32
        case .bf16: return .bf16
        case .f16: return .f16
        case .int8: return .i8
        case .int4, .nvfp4: return .u8
        case .fp8: return .f8e4m3
        }
    }

    public var description: String { rawValue }
}

/// Where a format keeps its scales.
public enum ScaleLayout: Sendable, Equatable {
    /// Values are stored as they are.
    case none
    /// One f32 scale for the whole tensor.
    case perTensor
    /// One scale of `element` per block of `WeightFormat.blockSize` inputs: `[rows, cols / blockSize]`;
    /// with `tensorScale`, also one f32 scale for the whole tensor that multiplies every block's.
    case perBlock(element: ElementType, tensorScale: Bool)
}
