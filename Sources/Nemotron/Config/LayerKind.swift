/// The four Nemotron-H mixer kinds. This is the only place that knows the pattern characters
/// (`hybrid_override_pattern`) and the names transformers writes in `layers_block_type`.
public enum LayerKind: Character, CaseIterable, Sendable {
    case mamba = "M"
    case attention = "*"
    case mlp = "-"
    case moe = "E"

    /// transformers 5 `layers_block_type` names, then the legacy names of older native HF.
    private static let blockTypeNames: [String: LayerKind] = [
        "linear_attention": .mamba, "mamba": .mamba,
        "full_attention": .attention, "attention": .attention,
        "mlp": .mlp, "moe": .moe,
    ]

    public init?(blockType: String) {
        guard let kind = Self.blockTypeNames[blockType] else { return nil }
        self = kind
    }

    public static var patternCharacters: String { String(allCases.map(\.rawValue)) }
    public static var blockTypes: [String] { blockTypeNames.keys.sorted() }

    public var name: String {
        switch self {
        case .mamba: return "mamba2"
        case .attention: return "attention"
        case .mlp: return "mlp"
        case .moe: return "moe"
        }
    }
}
