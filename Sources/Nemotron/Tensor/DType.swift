/// Element types found in safetensors files. Weights may be F32, BF16 or F16 and stay in that
/// dtype in memory; I64/I32 appear in reference files (token ids).
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case bf16 = "BF16"
    case f16 = "F16"
    case i64 = "I64"
    case i32 = "I32"

    public var byteSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .bf16, .f16: return 2
        case .i64: return 8
        }
    }

    public static let weightTypes: [DType] = [.f32, .bf16, .f16]
    public var isWeightType: Bool { Self.weightTypes.contains(self) }
}
