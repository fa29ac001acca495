import Foundation

/// A Hugging Face `tokenizer.json` byte-level BPE tokenizer, in pure Swift: added and special
/// tokens are matched first (never split), the rest is split by the pre-tokenizer's pattern,
/// mapped byte by byte to GPT-2's printable characters and merged by BPE. Encodes like
/// `tokenizers`' `encode(text, add_special_tokens=False)`; `encodePrompt` adds the BOS token
/// when `tokenizer_config.json` asks for it.
public struct Tokenizer: Sendable {
    let pattern: SplitPattern?
    let byteLevel: Bool
    let nfc: Bool
    let byteFallback: Bool
    /// Vocabulary id of each byte's byte-level character (nil if the vocab lacks it).
    let byteSymbols: [Int32?]
    let bpe: BPE
    /// Byte-level token text by id, as raw bytes; added tokens hold their content.
    let tokenBytes: [[UInt8]]
    let vocab: [String: Int32]
    /// Added tokens, longest first: (content bytes, id).
    let added: [(bytes: [UInt8], id: Int32)]
    let addedFirstBytes: Set<UInt8>
    public let specialIds: Set<Int>
    public let bosId: Int?
    public let eosIds: [Int]
    public let addsBOS: Bool
    public let chatTemplate: String?

    /// Encodes text exactly as `tokenizers` would with `add_special_tokens=False`.
    public func encode(_ text: String) -> [Int] {
        var bpe = self.bpe
        let source = nfc ? text.precomposedStringWithCanonicalMapping : text
        let bytes = Array(source.utf8)
        var ids: [Int] = []
        ids.reserveCapacity(bytes.count / 3)
        var start = 0, i = 0
        while i < bytes.count {
            if addedFirstBytes.contains(bytes[i]), let (length, id) = addedToken(in: bytes, at: i) {
                encodePlain(bytes[start..<i], into: &ids, bpe: &bpe)
                ids.append(Int(id))
                i += length
                start = i
            } else {
                i += 1
            }
        }
        encodePlain(bytes[start..<bytes.count], into: &ids, bpe: &bpe)
        return ids
    }

    /// A prompt's ids: `encode` with BOS prepended when the tokenizer config asks for it.
    public func encodePrompt(_ text: String) -> [Int] {
        let ids = encode(text)
        if addsBOS, let bosId, ids.first != bosId { return [bosId] + ids }
        return ids
    }

    /// Decodes like `decode(ids, skip_special_tokens=False)`; invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int]) -> String {
        String(decoding: bytes(ids), as: UTF8.self)
    }

    /// The raw bytes the ids stand for (unknown ids contribute nothing).
    public func bytes(_ ids: [Int]) -> [UInt8] {
        ids.flatMap { (0..<tokenBytes.count).contains($0) ? tokenBytes[$0] : [] }
    }

    public func id(of token: String) -> Int? { vocab[token].map(Int.init) }

    // MARK: - Pieces

    private func addedToken(in bytes: [UInt8], at i: Int) -> (Int, Int32)? {
        for token in added where token.bytes.count <= bytes.count - i {
            if bytes[i..<i + token.bytes.count].elementsEqual(token.bytes) { return (token.bytes.count, token.id) }
        }
        return nil
    }

    private func encodePlain(_ text: ArraySlice<UInt8>, into ids: inout [Int], bpe: inout BPE) {
        guard !text.isEmpty else { return }
        let bytes = Array(text)
        let pieces = pattern?.split(bytes) ?? [0..<bytes.count]
        var symbols: [Int32] = []
        for piece in pieces {
            symbols.removeAll(keepingCapacity: true)
            if byteLevel {
                for b in bytes[piece] { symbols.append(byteSymbols[Int(b)] ?? -1) }
            } else {
                appendCharacterSymbols(bytes[piece], to: &symbols)
            }
            for id in bpe.encode(symbols[...]) where id >= 0 { ids.append(Int(id)) }
        }
    }

    /// Without byte-level mapping: one symbol per character, or its `<0xXX>` bytes when the
    /// character is not in the vocabulary and the model asks for byte fallback.
    private func appendCharacterSymbols(_ piece: ArraySlice<UInt8>, to symbols: inout [Int32]) {
        for character in String(decoding: piece, as: UTF8.self) {
            if let id = vocab[String(character)] {
                symbols.append(id)
            } else if byteFallback {
                for b in String(character).utf8 { symbols.append(vocab[String(format: "<0x%02X>", b)] ?? -1) }
            } else {
                symbols.append(-1)
            }
        }
    }
}

/// Turns generated ids into text as they arrive, never emitting half a UTF-8 character: bytes
/// of an incomplete character wait for the next token.
public struct StreamingDecoder {
    private let tokenizer: Tokenizer
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// The text that `id` completes (possibly empty).
    public mutating func append(_ id: Int) -> String {
        pending += tokenizer.bytes([id])
        let complete = Self.completePrefix(pending)
        defer { pending.removeFirst(complete) }
        return String(decoding: pending[..<complete], as: UTF8.self)
    }

    /// Whatever is left at the end (incomplete characters become U+FFFD).
    public mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a UTF-8 sequence.
    static func completePrefix(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1, back = 0
        while i >= 0 && back < 4 && bytes[i] & 0xC0 == 0x80 {
            i -= 1
            back += 1
        }
        guard i >= 0 else { return bytes.count }
        let lead = bytes[i]
        let needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return bytes.count - i < needed ? i : bytes.count
    }
}
