/// Reading a conversation and template keyword arguments from JSON (`--messages FILE.json`,
/// `--chat-template-kwargs JSON`), with errors that name the source and the message at fault.
extension ChatTemplate {
    /// The roles `messages(fromJSON:source:)` accepts unless told otherwise.
    public static let standardRoles: Set = ["system", "user", "assistant", "tool"]

    /// An OpenAI-style conversation: a JSON list of objects, each with a string `role` among
    /// `roles` and a `content` that is a string or a list of content parts (null or absent only
    /// on an assistant turn that has `tool_calls`). Key order and every other key are kept.
    public static func messages(fromJSON text: String, source: String, roles: Set<String> = standardRoles) throws
        -> [JinjaValue]
    {
        let value = try parse(text, source: source)
        guard let list = value.listValue else {
            throw ChatTemplateError(
                .input, "expected a JSON list of messages, got \(value.jsonTypeName)", origin: source)
        }
        guard !list.isEmpty else { throw ChatTemplateError(.input, "the list of messages is empty", origin: source) }
        for (index, message) in list.enumerated() {
            let at = "message \(index + 1)"
            guard message.dictValue != nil else {
                throw ChatTemplateError(.input, "\(at) is \(message.jsonTypeName), not an object", origin: source)
            }
            guard let role = message["role"]?.stringValue else {
                throw ChatTemplateError(.input, "\(at) has no string 'role'", origin: source)
            }
            guard roles.contains(role) else {
                throw ChatTemplateError(
                    .input,
                    "\(at) has the unknown role '\(role)'; expected one of "
                        + roles.sorted().joined(separator: ", "), origin: source)
            }
            let content = message["content"]
            let hasToolCalls = message["tool_calls"].map { !$0.isNone } ?? false
            switch content {
            case let text? where text.stringValue != nil: continue
            case let parts? where parts.listValue != nil: continue
            case nil where role == "assistant" && hasToolCalls: continue
            case let null? where null.isNone && role == "assistant" && hasToolCalls: continue
            default:
                throw ChatTemplateError(
                    .input, "\(at) (\(role)) has no 'content' (a string or a list of parts)",
                    origin: source)
            }
        }
        return list
    }

    /// Keyword arguments for the template (`{"enable_thinking": false}`): a JSON object.
    public static func keywordArguments(fromJSON text: String, source: String) throws -> [String: JinjaValue] {
        let value = try parse(text, source: source)
        guard let pairs = value.dictValue else {
            throw ChatTemplateError(
                .input, "expected a JSON object of keyword arguments, got \(value.jsonTypeName)",
                origin: source)
        }
        if let clash = pairs.map(\.key).first(where: reservedNames.contains) {
            throw ChatTemplateError(
                .input,
                "'\(clash)' cannot be a keyword argument: the template receives it from "
                    + "the conversation itself", origin: source)
        }
        return Dictionary(pairs.map { ($0.key, $0.value) }) { _, last in last }
    }

    private static func parse(_ text: String, source: String) throws -> JinjaValue {
        do {
            return try JinjaValue(json: text)
        } catch var error as ChatTemplateError {
            error.origin = source
            throw error
        }
    }
}

extension JinjaValue {
    /// The JSON name of this value's type with its article, for input errors.
    var jsonTypeName: String {
        switch storage {
        case .none: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string, .markup: return "a string"
        case .list, .tuple: return "a list"
        case .dict: return "an object"
        default: return "a \(typeName)"
        }
    }
}
