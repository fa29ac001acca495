import Foundation

extension Tokenizer {
    /// Reads `tokenizer.json` and, when present, `tokenizer_config.json` from a checkpoint
    /// directory. Unsupported features fail with an error naming the file and the part.
    public init(directory: URL) throws {
        let file = directory.appendingPathComponent("tokenizer.json")
        let json = try JSONObject(contentsOf: file)
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let config =
            FileManager.default.fileExists(atPath: configURL.path) ? try JSONObject(contentsOf: configURL) : nil
        try self.init(json: json, config: config)
    }

    init(json: JSONObject, config: JSONObject?) throws {
        let path = json.path
        func unsupported(_ part: String, _ value: Any) -> NemotronError {
            .configValue(
                path: path, key: part, value: "\(value)",
                expected: "a part nemotron-run's tokenizer supports (byte-level BPE)")
        }
        func typeName(_ value: Any?) -> String {
            (value as? [String: Any])?["type"] as? String ?? "\(value ?? "missing")"
        }

        // Model: BPE without subword prefixes, suffixes or dropout.
        guard let model = json.values["model"] as? [String: Any], (model["type"] as? String ?? "BPE") == "BPE" else {
            throw unsupported("model.type", typeName(json.values["model"]))
        }
        guard let vocabulary = model["vocab"] as? [String: Any] else {
            throw NemotronError.configKeyMissing(path: path, key: "model.vocab")
        }
        if let prefix = model["continuing_subword_prefix"] as? String, !prefix.isEmpty {
            throw unsupported("model.continuing_subword_prefix", prefix)
        }
        if let suffix = model["end_of_word_suffix"] as? String, !suffix.isEmpty {
            throw unsupported("model.end_of_word_suffix", suffix)
        }
        if let dropout = model["dropout"], !(dropout is NSNull) { throw unsupported("model.dropout", dropout) }

        // Normalizer: none, or NFC.
        switch json.values["normalizer"] {
        case nil, is NSNull: nfc = false
        case let normalizer as [String: Any] where normalizer["type"] as? String == "NFC": nfc = true
        case let other: throw unsupported("normalizer.type", typeName(other))
        }

        // Pre-tokenizer: ByteLevel (with its GPT-2 regex or none), after at most one Split(regex, Isolated).
        var pattern: SplitPattern?
        var byteLevel = false
        func readPreTokenizer(_ value: Any?) throws {
            guard let p = value as? [String: Any] else {
                if value == nil || value is NSNull { return }
                throw unsupported("pre_tokenizer", value!)
            }
            switch p["type"] as? String {
            case "Sequence": for item in p["pretokenizers"] as? [Any] ?? [] { try readPreTokenizer(item) }
            case "ByteLevel":
                if p["add_prefix_space"] as? Bool == true {
                    throw unsupported("pre_tokenizer.ByteLevel.add_prefix_space", true)
                }
                if p["use_regex"] as? Bool ?? true {
                    guard pattern == nil else { throw unsupported("pre_tokenizer", "two split patterns") }
                    pattern = .gpt2
                }
                byteLevel = true
            case "Split":
                let source: String
                switch p["pattern"] as? [String: Any] {
                case .some(let pattern) where pattern["Regex"] is String: source = pattern["Regex"] as! String
                case .some(let pattern) where pattern["String"] is String:
                    source = NSRegularExpression.escapedPattern(for: pattern["String"] as! String)
                default: throw unsupported("pre_tokenizer.Split.pattern", p["pattern"] ?? "missing")
                }
                guard (p["behavior"] as? String ?? "Isolated") == "Isolated", p["invert"] as? Bool != true,
                    pattern == nil, !byteLevel
                else {
                    throw unsupported("pre_tokenizer.Split", p)
                }
                pattern = try SplitPattern(source: source)
            case let other: throw unsupported("pre_tokenizer.type", other ?? "missing")
            }
        }
        try readPreTokenizer(json.values["pre_tokenizer"])
        guard byteLevel else { throw unsupported("pre_tokenizer", "no ByteLevel step") }
        self.pattern = pattern

        switch json.values["decoder"] {
        case nil, is NSNull: break
        case let decoder as [String: Any] where decoder["type"] as? String == "ByteLevel": break
        case let other: throw unsupported("decoder.type", typeName(other))
        }
        postProcessor = try PostProcessor(json.values["post_processor"], path: path, unsupported: unsupported)

        // Vocabulary and added tokens: ids are integers, as `tokenizers` reads them (u32).
        var modelVocab: [String: Int32] = [:]
        modelVocab.reserveCapacity(vocabulary.count)
        for (token, value) in vocabulary {
            modelVocab[token] = try Self.tokenId(value, key: "model.vocab[\(JSONObject.describe(token))]", path: path)
        }
        var vocab = modelVocab
        var added: [(bytes: [UInt8], id: Int32)] = []
        var specialIds: Set<Int> = []
        guard let addedList = json.values["added_tokens"] as? [Any] ?? (json.values["added_tokens"] == nil ? [] : nil)
        else {
            throw NemotronError.configValue(
                path: path, key: "added_tokens", value: "\(json.values["added_tokens"]!)", expected: "a list of tokens")
        }
        for (index, item) in addedList.enumerated() {
            guard let token = item as? [String: Any], let content = token["content"] as? String else {
                throw NemotronError.configValue(
                    path: path, key: "added_tokens[\(index)]", value: "\(item)",
                    expected: "an object with a \"content\" string and an \"id\"")
            }
            let id = try Self.tokenId(token["id"] ?? NSNull(), key: "added_tokens[\(index)].id", path: path)
            if token["lstrip"] as? Bool == true || token["rstrip"] as? Bool == true
                || token["single_word"] as? Bool == true
            {
                throw unsupported("added_tokens[\(content)] lstrip/rstrip/single_word", true)
            }
            vocab[content] = id
            added.append((Array(content.utf8), id))
            if token["special"] as? Bool == true { specialIds.insert(Int(id)) }
        }
        addedTokens = AddedTokens(added)
        self.specialIds = specialIds
        self.vocab = vocab

        // Token bytes for decoding: byte-level tokens map back through GPT-2's table.
        let size = Int(vocab.values.max() ?? -1) + 1
        var tokenBytes = [[UInt8]](repeating: [], count: size)
        let addedIds = Set(added.map(\.id))
        for (token, id) in vocab {
            tokenBytes[Int(id)] = addedIds.contains(id) ? Array(token.utf8) : Self.byteLevelBytes(token) ?? []
        }
        self.tokenBytes = tokenBytes
        byteSymbols = (0..<256).map { modelVocab[String(ByteLevel.byteToScalar[$0])] ?? -1 }
        // Byte fallback would only apply to a byte whose character the vocabulary lacks.
        if model["byte_fallback"] as? Bool == true && byteSymbols.contains(-1) {
            throw unsupported("model.byte_fallback", true)
        }
        unknownId = (model["unk_token"] as? String).flatMap { modelVocab[$0] } ?? -1
        fuseUnknown = model["fuse_unk"] as? Bool ?? false

        // Merges as `tokenizers` builds them: "a b" (one space) or ["a", "b"], where a, b and ab
        // are all in model.vocab; anything else makes the file invalid.
        var merges: [(a: Int32, b: Int32, merged: Int32)] = []
        guard let mergeList = model["merges"] as? [Any] ?? (model["merges"] == nil ? [] : nil) else {
            throw NemotronError.configValue(
                path: path, key: "model.merges", value: "\(model["merges"]!)", expected: "a list of merges")
        }
        merges.reserveCapacity(mergeList.count)
        for (index, merge) in mergeList.enumerated() {
            let parts: [String]
            if let text = merge as? String {
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                parts = merge as? [String] ?? []
            }
            func invalid(_ expected: String) -> NemotronError {
                .configValue(
                    path: path, key: "model.merges[\(index)]", value: JSONObject.describe(merge), expected: expected)
            }
            guard parts.count == 2 else { throw invalid("\"a b\" (two tokens and one space) or [\"a\", \"b\"]") }
            // One lookup each (String hashing normalizes non-ASCII text: most of a load's time).
            let merged = parts[0] + parts[1]
            guard let a = modelVocab[parts[0]], let b = modelVocab[parts[1]], let ab = modelVocab[merged] else {
                let missing = [parts[0], parts[1], merged].first { modelVocab[$0] == nil }!
                throw invalid("tokens of model.vocab whose concatenation is in it too (\"\(missing)\" is not)")
            }
            merges.append((a, b, ab))
        }
        var wholeTokens: [[UInt8]: Int32]?
        if model["ignore_merges"] as? Bool == true {
            wholeTokens = [:]
            for (token, id) in modelVocab { if let bytes = Self.byteLevelBytes(token) { wholeTokens![bytes] = id } }
        }
        bpe = BPE(merges: merges, wholeTokens: wholeTokens)

        // BOS/EOS and the chat template from tokenizer_config.json.
        func tokenName(_ key: String) -> String? {
            if let text = config?.values[key] as? String { return text }
            return (config?.values[key] as? [String: Any])?["content"] as? String
        }
        bosId = tokenName("bos_token").flatMap { vocab[$0] }.map(Int.init)
        eosIds = tokenName("eos_token").flatMap { vocab[$0] }.map { [Int($0)] } ?? []
        chatTemplate = config?.values["chat_template"] as? String
    }

    /// Largest token id accepted: ids index a table, so one huge id would allocate gigabytes
    /// (64 times the largest published vocabularies, 262,144 ids).
    static let maxTokenId = (1 << 24) - 1

    /// A token id as `tokenizers` reads one (a JSON integer, no fraction, no boolean), within
    /// 0...`maxTokenId`.
    static func tokenId(_ value: Any, key: String, path: String) throws -> Int32 {
        guard let id = JSONObject.exactInteger(value), (0...maxTokenId).contains(id) else {
            throw NemotronError.configValue(
                path: path, key: key, value: JSONObject.describe(value),
                expected: "an integer id in 0...\(maxTokenId)")
        }
        return Int32(id)
    }

    /// The raw bytes of a byte-level token, or nil if it has a character outside GPT-2's table.
    private static func byteLevelBytes(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for scalar in token.unicodeScalars {
            guard let byte = ByteLevel.scalarToByte[scalar.value] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

extension PostProcessor {
    /// Reads `post_processor`: null, TemplateProcessing, ByteLevel, or a Sequence of them.
    init(_ value: Any?, path: String, unsupported: (String, Any) -> NemotronError) throws {
        var templates: [[Piece]] = []
        func read(_ value: Any?) throws {
            guard let processor = value as? [String: Any] else {
                if value == nil || value is NSNull { return }
                throw unsupported("post_processor", value!)
            }
            switch processor["type"] as? String {
            case "Sequence": for item in processor["processors"] as? [Any] ?? [] { try read(item) }
            case "ByteLevel": break
            case "TemplateProcessing":
                let specials = processor["special_tokens"] as? [String: Any] ?? [:]
                var template: [Piece] = []
                for case let piece as [String: Any] in processor["single"] as? [Any] ?? [] {
                    if let sequence = piece["Sequence"] as? [String: Any] {
                        guard sequence["id"] as? String == "A" else {
                            throw unsupported("post_processor.single", piece)
                        }
                        template.append(.sequence)
                    } else if let name = (piece["SpecialToken"] as? [String: Any])?["id"] as? String,
                        let ids = (specials[name] as? [String: Any])?["ids"] as? [Any]
                    {
                        template.append(
                            .special(
                                try ids.enumerated().map { index, id in
                                    Int(
                                        try Tokenizer.tokenId(
                                            id, key: "post_processor.special_tokens.\(name).ids[\(index)]",
                                            path: path))
                                }))
                    } else {
                        throw unsupported("post_processor.single", piece)
                    }
                }
                templates.append(template)
            case let other: throw unsupported("post_processor.type", other ?? "missing")
            }
        }
        try read(value)
        self.init(templates: templates)
    }
}
