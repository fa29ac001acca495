/// Every user-facing failure: each case carries the file, key, tensor or value at fault and
/// what was expected, so the message alone tells the user what to fix.
public enum NemotronError: Error, CustomStringConvertible, Equatable {
    case fileMissing(path: String, what: String)
    case fileUnreadable(path: String, reason: String)
    case badSafetensors(path: String, reason: String)
    case tensorMissing(name: String, searched: String)
    case tensorDType(name: String, path: String, dtype: String, allowed: [String])
    case tensorShape(name: String, path: String, shape: [Int], expected: [Int])
    /// A quantized weight's scale tensor is absent.
    case scaleMissing(name: String, weight: String, format: String, searched: String)
    /// A weight whose storage does not fit its quantization (dtype against the config, blocks).
    case quantizedWeight(name: String, path: String, reason: String)
    case configKeyMissing(path: String, key: String)
    case configValue(path: String, key: String, value: String, expected: String)
    case unknownConfigKeys(path: String, keys: [String], allowed: [String])
    case invalidTokens(reason: String)
    case invalidArgument(name: String, value: String, expected: String)
    case parallel(reason: String)
    /// Another rank failed and rank 0 reports it; this rank only exits non-zero.
    case peerFailure
    /// A weight holds NaN or an infinity (a corrupt or badly converted checkpoint).
    case nonFiniteTensor(name: String, path: String, index: Int, value: Float)
    /// A forward pass gave NaN or infinite logits, so no token can be chosen (`prompt` < 0: a
    /// perplexity score).
    case nonFiniteLogits(prompt: Int, token: Int)
    /// The machine cannot provide what the run asks for (threads, memory); `reason` names the
    /// setting and the limit.
    case resource(reason: String)

    public var description: String {
        switch self {
        case .fileMissing(let path, let what):
            return "\(path): not found (expected \(what))"
        case .fileUnreadable(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .badSafetensors(let path, let reason):
            return "\(path): not a valid safetensors file: \(reason)"
        case .tensorMissing(let name, let searched):
            return "tensor '\(name)' is missing (searched \(searched))"
        case .tensorDType(let name, let path, let dtype, let allowed):
            return "\(path): tensor '\(name)' has dtype \(dtype); supported: \(allowed.joined(separator: ", "))"
        case .tensorShape(let name, let path, let shape, let expected):
            return "\(path): tensor '\(name)' has shape \(shape); expected \(expected) from config.json"
        case .scaleMissing(let name, let weight, let format, let searched):
            return "tensor '\(name)' is missing: the \(format) weight '\(weight)' needs it (searched \(searched))"
        case .quantizedWeight(let name, let path, let reason):
            return "\(path): tensor '\(name)' \(reason)"
        case .configKeyMissing(let path, let key):
            return "\(path): required key '\(key)' is missing"
        case .configValue(let path, let key, let value, let expected):
            return "\(path): key '\(key)' has value \(value); expected \(expected)"
        case .unknownConfigKeys(let path, let keys, let allowed):
            return
                "\(path): unknown key\(keys.count > 1 ? "s" : "") \(keys.map { "'\($0)'" }.joined(separator: ", ")); "
                + "allowed keys: \(allowed.joined(separator: ", "))"
        case .invalidTokens(let reason):
            return "invalid tokens: \(reason)"
        case .invalidArgument(let name, let value, let expected):
            return "\(name) = \(value) is invalid; expected \(expected)"
        case .parallel(let reason):
            return reason
        case .peerFailure:
            return "another rank failed"
        case .nonFiniteTensor(let name, let path, let index, let value):
            return
                "\(path): tensor '\(name)' holds \(value) at element \(index); weights must be finite numbers (a "
                + "corrupt or badly converted checkpoint?)"
        case .nonFiniteLogits(let prompt, let token):
            let which = prompt < 0 ? "of the scored text" : "for token \(token) of prompt \(prompt)"
            return
                "the logits \(which) are not finite (NaN or infinity), so no token can be chosen or scored: the "
                + "checkpoint's weights or config.json's values produce non-numbers"
        case .resource(let reason):
            return reason
        }
    }
}
