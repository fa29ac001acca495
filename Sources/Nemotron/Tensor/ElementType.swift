/// Element types of safetensors files, as their headers spell them. A file may hold any of
/// these; which ones can be weights, and how, is `WeightFormat`'s business.
public enum ElementType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case bf16 = "BF16"
    case f16 = "F16"
    case f8e4m3 = "F8_E4M3"
    case i64 = "I64"
    case i32 = "I32"
    case i8 = "I8"
    case u8 = "U8"

    public var byteSize: Int {
        switch self {
        case .i64: return 8
        case .f32, .i32: return 4
        case .bf16, .f16: return 2
        case .f8e4m3, .i8, .u8: return 1
        }
    }
}
