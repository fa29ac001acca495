import Foundation

extension Tokenizer {
    /// Reads `tokenizer.json` and, when present, `tokenizer_config.json` from a checkpoint
    /// directory. Unsupported features fail with an error naming them.
    public init(directory: URL) throws {
        let file = directory.appendingPathComponent("tokenizer.json")
        let json = try JSONObject(contentsOf: file)
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try JSONObject(contentsOf: configURL) : nil
        try self.init(json: json, config: config)
    }

    init(json: JSONObject, config: JSONObject?) throws {
        let path = json.path
        func unsupported(_ what: String, _ value: Any) -> NemotronError {
            .configValue(path: path, key: what, value: "\(value)", expected: "a feature nemotron-run's tokenizer supports (byte-level BPE)")
        }
        guard let model = json.values["model"] as? [String: Any], (model["type"] as? String ?? "BPE") == "BPE" else {
            throw unsupported("model.type", (json.values["model"] as? [String: Any])?["type"] ?? "missing")
        }
        guard let vocabulary = model["vocab"] as? [String: Any] else { throw NemotronError.configKeyMissing(path: path, key: "model.vocab") }
        if let prefix = model["continuing_subword_prefix"] as? String, !prefix.isEmpty { throw unsupported("model.continuing_subword_prefix", prefix) }
        if let suffix = model["end_of_word_suffix"] as? String, !suffix.isEmpty { throw unsupported("model.end_of_word_suffix", suffix) }
        if let dropout = model["dropout"], !(dropout is NSNull) { throw unsupported("model.dropout", dropout) }
        byteFallback = model["byte_fallback"] as? Bool ?? false

        // Normalizer: none, or NFC.
        switch json.values["normalizer"] {
        case nil, is NSNull: nfc = false
        case let normalizer as [String: Any] where normalizer["type"] as? String == "NFC": nfc = true
        case let other: throw unsupported("normalizer", (other as? [String: Any])?["type"] ?? other ?? "")
        }

        // Pre-tokenizer: ByteLevel (with its GPT-2 regex or none), Split(regex, Isolated), or a Sequence of them.
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
                byteLevel = true
                if p["add_prefix_space"] as? Bool == true { throw unsupported("pre_tokenizer.ByteLevel.add_prefix_space", true) }
                if p["use_regex"] as? Bool ?? true {
                    guard pattern == nil else { throw unsupported("pre_tokenizer", "two split patterns") }
                    pattern = .gpt2
                }
            case "Split":
                guard let source = (p["pattern"] as? [String: Any])?["Regex"] as? String ?? (p["pattern"] as? [String: Any])?["String"] as? String,
                    (p["behavior"] as? String ?? "Isolated") == "Isolated", p["invert"] as? Bool != true, pattern == nil
                else { throw unsupported("pre_tokenizer.Split", p) }
                pattern = try SplitPattern(source: source)
            case let type: throw unsupported("pre_tokenizer.type", type ?? "missing")
            }
        }
        try readPreTokenizer(json.values["pre_tokenizer"])
        self.pattern = pattern
        self.byteLevel = byteLevel

        // Vocabulary and added tokens.
        var vocab: [String: Int32] = [:]
        for (token, id) in vocabulary { if let id = JSONObject.numeric(id) { vocab[token] = Int32(id.intValue) } }
        var added: [(bytes: [UInt8], id: Int32)] = []
        var specialIds: Set<Int> = []
        for case let token as [String: Any] in json.values["added_tokens"] as? [Any] ?? [] {
            guard let content = token["content"] as? String, let id = token["id"].flatMap(JSONObject.numeric) else { continue }
            if token["lstrip"] as? Bool == true || token["rstrip"] as? Bool == true || token["single_word"] as? Bool == true {
                throw unsupported("added_tokens[\(content)] lstrip/rstrip/single_word", true)
            }
            vocab[content] = Int32(id.intValue)
            added.append((Array(content.utf8), Int32(id.intValue)))
            if token["special"] as? Bool == true { specialIds.insert(id.intValue) }
        }
        self.added = added.sorted { $0.bytes.count > $1.bytes.count }
        addedFirstBytes = Set(added.compactMap(\.bytes.first))
        self.specialIds = specialIds
        self.vocab = vocab

        // Token bytes for decoding: byte-level tokens map back through GPT-2's table.
        let size = Int(vocab.values.max() ?? -1) + 1
        var tokenBytes = [[UInt8]](repeating: [], count: size)
        let addedIds = Set(added.map(\.id))
        for (token, id) in vocab {
            if addedIds.contains(id) || !byteLevel {
                tokenBytes[Int(id)] = Self.fallbackByte(token) ?? Array(token.utf8)
            } else {
                tokenBytes[Int(id)] = token.unicodeScalars.compactMap { ByteLevel.scalarToByte[$0.value] }
            }
        }
        self.tokenBytes = tokenBytes
        byteSymbols = (0..<256).map { vocab[String(ByteLevel.byteToScalar[$0])] }

        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        for (rank, merge) in (model["merges"] as? [Any] ?? []).enumerated() {
            let parts: [String]
            if let text = merge as? String { parts = text.split(separator: " ", maxSplits: 1).map(String.init) } else { parts = merge as? [String] ?? [] }
            guard parts.count == 2, let a = vocab[parts[0]], let b = vocab[parts[1]], let merged = vocab[parts[0] + parts[1]] else { continue }
            if merges[BPE.pair(a, b)] == nil { merges[BPE.pair(a, b)] = (Int32(rank), merged) }
        }
        bpe = BPE(merges: merges)

        // BOS/EOS and the chat template from tokenizer_config.json.
        func tokenName(_ key: String) -> String? {
            if let text = config?.values[key] as? String { return text }
            return (config?.values[key] as? [String: Any])?["content"] as? String
        }
        bosId = tokenName("bos_token").flatMap { vocab[$0] }.map(Int.init)
        eosIds = tokenName("eos_token").flatMap { vocab[$0] }.map { [Int($0)] } ?? []
        addsBOS = config?.values["add_bos_token"] as? Bool ?? false
        chatTemplate = config?.values["chat_template"] as? String
    }

    /// `<0xAB>` byte-fallback tokens stand for one raw byte.
    private static func fallbackByte(_ token: String) -> [UInt8]? {
        guard token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), let value = UInt8(token.dropFirst(3).prefix(2), radix: 16) else {
            return nil
        }
        return [value]
    }
}
