import Foundation

/// A checkpoint's chat template, rendered as `tokenizer.apply_chat_template(messages,
/// tools=..., add_generation_prompt=..., tokenize=False, **kwargs)` renders it in `transformers`:
/// the template sees `messages`, `tools`, `documents`, `add_generation_prompt`, the tokenizer's
/// special tokens (`bos_token`, `eos_token`, ...) and the caller's keyword arguments (which win
/// over special tokens of the same name). As transformers does, message keys holding null are
/// dropped, and reasoning given as `reasoning_content`, `thinking` or `reasoning` is also passed
/// under `thinking` and `reasoning_content`. The rendered text already holds its special tokens:
/// tokenize it without adding any again.
public struct ChatTemplate: Sendable {
    /// The Jinja source.
    public let source: String
    /// Where the template came from, used in every error: a file, or a file and key.
    public let origin: String
    /// The tokenizer's named special tokens (`bos_token`, `eos_token`, `unk_token`, `pad_token`, ...).
    public let specialTokens: [String: String]
    let template: JinjaTemplate

    /// Parses `source`; an invalid or unsupported construct fails here, naming line and column.
    public init(source: String, specialTokens: [String: String] = [:], origin: String = "chat template") throws {
        do {
            template = try JinjaTemplate(source: source)
        } catch var error as ChatTemplateError {
            error.origin = origin
            throw error
        }
        self.source = source
        self.origin = origin
        self.specialTokens = specialTokens
    }

    public var bosToken: String? { specialTokens["bos_token"] }
    public var eosToken: String? { specialTokens["eos_token"] }

    /// The variables a caller may not pass as keyword arguments (transformers passes them itself).
    public static let reservedNames: Set = ["messages", "tools", "documents", "add_generation_prompt"]

    /// Renders a conversation. `messages` are objects such as `{"role": "user", "content": "..."}`;
    /// `tools` are JSON schemas (nil is passed to the template as `None`, as transformers does).
    public func render(
        messages: [JinjaValue], tools: [JinjaValue]? = nil, documents: [JinjaValue]? = nil,
        addGenerationPrompt: Bool = false, kwargs: [String: JinjaValue] = [:]
    ) throws -> String {
        guard !messages.isEmpty else {
            throw ChatTemplateError(.input, "cannot apply a chat template to an empty conversation", origin: origin)
        }
        if let clash = kwargs.keys.sorted().first(where: Self.reservedNames.contains) {
            throw ChatTemplateError(
                .input,
                "the keyword argument '\(clash)' is reserved: the template receives it from "
                    + "the conversation itself", origin: origin)
        }
        var variables: [String: JinjaValue] = specialTokens.mapValues { .string($0) }
        variables.merge(kwargs) { _, new in new }
        variables["messages"] = .list(try messages.enumerated().map { try Self.normalized(message: $1, index: $0) })
        variables["tools"] = tools.map { .list($0) } ?? .null
        variables["documents"] = documents.map { .list($0) } ?? .null
        variables["add_generation_prompt"] = .bool(addGenerationPrompt)
        do {
            return try template.render(variables)
        } catch var error as ChatTemplateError {
            error.origin = origin
            throw error
        }
    }

    /// transformers' `_normalize_chat_messages` and `_alias_reasoning_fields`.
    private static func normalized(message: JinjaValue, index: Int) throws -> JinjaValue {
        guard case .dict(let object) = message.storage else {
            throw ChatTemplateError(.input, "message \(index) is a \(message.typeName), not an object")
        }
        var kept = JinjaDict(object.pairs.filter { !$0.1.isNone })
        if let reasoning = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap({ kept[$0] }).first {
            var aliased = JinjaDict()
            aliased["thinking"] = reasoning
            for (key, value) in kept.pairs { aliased[key] = value }
            aliased["reasoning_content"] = reasoning
            kept = aliased
        }
        return .dict(kept)
    }
}

// MARK: - Loading from a checkpoint directory

extension ChatTemplate {
    static let configFile = "tokenizer_config.json"
    static let templateFile = "chat_template.jinja"
    static let extraTemplatesDirectory = "additional_chat_templates"
    static let specialTokenKeys = [
        "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
    ]

    /// Loads the template a checkpoint ships, as transformers finds it: `chat_template.jinja`
    /// (and `additional_chat_templates/NAME.jinja`) when present, else `chat_template` in
    /// `tokenizer_config.json`, a string or a list of `{"name", "template"}`. `name` picks a named
    /// template (default: `default`). Special tokens come from `tokenizer_config.json` (a string
    /// or an object with `content`), or from a legacy `special_tokens_map.json`.
    public static func load(directory: URL, name: String? = nil) throws -> ChatTemplate {
        let configURL = directory.appendingPathComponent(configFile)
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try readJSON(configURL) : nil
        var templates: [(name: String, source: String, origin: String)] = []
        let fileURL = directory.appendingPathComponent(templateFile)
        if FileManager.default.fileExists(atPath: fileURL.path) {
            templates.append(("default", try readText(fileURL), fileURL.path))
        }
        let extraURL = directory.appendingPathComponent(extraTemplatesDirectory)
        let extraFiles = (try? FileManager.default.contentsOfDirectory(atPath: extraURL.path)) ?? []
        for file in extraFiles.sorted() where file.hasSuffix(".jinja") {
            let url = extraURL.appendingPathComponent(file)
            templates.append((String(file.dropLast(".jinja".count)), try readText(url), url.path))
        }
        if templates.isEmpty, let config, let entry = config["chat_template"], !entry.isNone {
            templates = try configTemplates(entry, origin: "\(configURL.path) key 'chat_template'")
        }
        guard !templates.isEmpty else {
            let why = config == nil ? "there is no \(configFile)" : "\(configFile) has no 'chat_template' key"
            throw ChatTemplateError(
                .configuration,
                "no chat template: \(why) and there is no \(templateFile) "
                    + "(expected a Jinja template in one of them)", origin: directory.path)
        }
        let wanted = name ?? "default"
        guard let chosen = templates.first(where: { $0.name == wanted }) else {
            let names = templates.map { "'\($0.name)'" }.joined(separator: ", ")
            throw ChatTemplateError(
                .configuration, "no chat template named '\(wanted)'; available: \(names)",
                origin: directory.path)
        }
        return try ChatTemplate(
            source: chosen.source, specialTokens: try specialTokens(config, directory: directory),
            origin: chosen.origin)
    }

    private static func configTemplates(_ entry: JinjaValue, origin: String) throws -> [(
        name: String, source: String, origin: String
    )] {
        if let text = entry.stringValue { return [("default", text, origin)] }
        guard let list = entry.listValue else {
            throw ChatTemplateError(
                .configuration,
                "expected a string or a list of {\"name\", \"template\"} objects, got a \(entry.typeName)",
                origin: origin)
        }
        return try list.enumerated().map { index, item in
            guard let name = item["name"]?.stringValue, let source = item["template"]?.stringValue else {
                throw ChatTemplateError(
                    .configuration, "item \(index) is not a {\"name\": string, \"template\": string} object",
                    origin: origin)
            }
            return (name, source, "\(origin) ('\(name)')")
        }
    }

    private static func specialTokens(_ config: JinjaValue?, directory: URL) throws -> [String: String] {
        var tokens: [String: String] = [:]
        func add(from object: JinjaValue) {
            for key in specialTokenKeys {
                if let text = object[key].flatMap(tokenText) { tokens[key] = text }
            }
            for (key, value) in object["extra_special_tokens"]?.dictValue ?? [] {
                if let text = tokenText(value) { tokens[key] = text }
            }
        }
        if let config { add(from: config) }
        let legacyURL = directory.appendingPathComponent("special_tokens_map.json")
        if config?["added_tokens_decoder"] == nil, FileManager.default.fileExists(atPath: legacyURL.path) {
            add(from: try readJSON(legacyURL))
        }
        return tokens
    }

    /// A special token written as a string or as an AddedToken object with `content`.
    private static func tokenText(_ value: JinjaValue) -> String? {
        value.stringValue ?? value["content"]?.stringValue
    }

    private static func readText(_ url: URL) throws -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ChatTemplateError(.configuration, "cannot read the file", origin: url.path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ChatTemplateError(.configuration, "not UTF-8 text", origin: url.path)
        }
        return text
    }

    private static func readJSON(_ url: URL) throws -> JinjaValue {
        do {
            return try JinjaValue(json: try readText(url))
        } catch var error as ChatTemplateError {
            error.origin = url.path
            throw error
        }
    }
}
