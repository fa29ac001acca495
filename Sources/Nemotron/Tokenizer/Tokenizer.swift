import Foundation

/// A Hugging Face `tokenizer.json` byte-level BPE tokenizer, in pure Swift: added and special
/// tokens are matched first (never split), the rest is split by the pre-tokenizer's pattern,
/// mapped byte by byte to GPT-2's printable characters and merged by BPE; the post-processor's
/// template adds special tokens when asked. Encodes like `tokenizers`' `encode(text,
/// add_special_tokens=...)`.
public struct Tokenizer: Sendable {
    let pattern: SplitPattern?
    let nfc: Bool
    /// Vocabulary id of each byte's byte-level character; -1 when the vocabulary lacks it.
    let byteSymbols: [Int32]
    /// Stands for a byte whose character the vocabulary lacks: `model.unk_token`'s id, or -1
    /// (the byte is dropped); `fuseUnknown` merges consecutive ones.
    let unknownId: Int32
    let fuseUnknown: Bool
    let bpe: BPE
    let cache = PieceCache()
    /// Byte-level token text by id, as raw bytes; added tokens hold their content.
    let tokenBytes: [[UInt8]]
    let vocab: [String: Int32]
    let addedTokens: AddedTokens
    let postProcessor: PostProcessor
    public let specialIds: Set<Int>
    public let bosId: Int?
    public let eosIds: [Int]
    public let chatTemplate: String?

    /// Encodes text exactly as `tokenizers` would with `add_special_tokens=False`.
    public func encode(_ text: String) -> [Int] { encode(text, addSpecialTokens: false) }

    /// Encodes text exactly as `tokenizers`' `encode(text, add_special_tokens=...)`: with
    /// `addSpecialTokens`, the special tokens of `tokenizer.json`'s `post_processor` (for
    /// example a leading `<s>`) wrap the text's ids; without a post-processor there are none.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        var source = nfc ? text.precomposedStringWithCanonicalMapping : text
        let ids = source.withUTF8 { bytes in cache.withTable { encode(bytes, table: &$0) } }
        return addSpecialTokens ? postProcessor.apply(ids) : ids.map(Int.init)
    }

    /// A raw-text prompt's ids as transformers' `tokenizer(text)["input_ids"]` gives them:
    /// `encode(text, addSpecialTokens: true)`. (transformers 5 ignores `tokenizer_config.json`'s
    /// `add_bos_token` when a `tokenizer.json` exists; the post-processor alone decides.)
    public func encodePrompt(_ text: String) -> [Int] { encode(text, addSpecialTokens: true) }

    /// Decodes like `decode(ids, skip_special_tokens=False)`; invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int]) -> String {
        String(decoding: bytes(ids), as: UTF8.self)
    }

    /// The raw bytes the ids stand for (unknown ids contribute nothing).
    public func bytes(_ ids: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where tokenBytes.indices.contains(id) { out += tokenBytes[id] }
        return out
    }

    public func id(of token: String) -> Int? { vocab[token].map(Int.init) }

    // MARK: - Pieces

    private func encode(_ bytes: UnsafeBufferPointer<UInt8>, table: inout PieceTable) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(bytes.count / 3 + 1)
        var scratch = BPE.Scratch()
        var start = 0
        var i = 0
        while i < bytes.count {
            if let (length, id) = addedTokens.match(bytes, at: i) {
                encodePlain(
                    UnsafeBufferPointer(rebasing: bytes[start..<i]), into: &ids, table: &table, scratch: &scratch)
                ids.append(id)
                i += length
                start = i
            } else {
                i += 1
            }
        }
        encodePlain(
            UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]), into: &ids, table: &table, scratch: &scratch)
        return ids
    }

    private func encodePlain(
        _ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], table: inout PieceTable,
        scratch: inout BPE.Scratch
    ) {
        guard !text.isEmpty else { return }
        var symbols: [Int32] = []
        func encodePiece(_ range: Range<Int>) {
            let piece = UnsafeBufferPointer(rebasing: text[range])
            let hash = PieceTable.hash(piece)
            if table.append(piece, hash: hash, to: &ids) { return }
            symbols.removeAll(keepingCapacity: true)
            for b in piece {
                let symbol = byteSymbols[Int(b)]
                if symbol >= 0 {
                    symbols.append(symbol)
                } else if unknownId >= 0 && !(fuseUnknown && symbols.last == unknownId) {
                    symbols.append(unknownId)
                }
            }
            let first = ids.count
            bpe.encode(bytes: piece, symbols: symbols, into: &ids, scratch: &scratch)
            table.insert(piece, hash: hash, ids: ids[first...])
        }
        if let pattern { pattern.forEachPiece(in: text, encodePiece) } else { encodePiece(0..<text.count) }
    }
}

/// Added and special tokens, matched whole in the raw text before anything else, longest first
/// at the leftmost position (as `tokenizers`' added vocabulary does).
struct AddedTokens: Sendable {
    /// Trie over the tokens' bytes: node << 8 | byte → child node.
    private let children: [Int: Int32]
    /// Token id ending at each node, or -1.
    private let ids: [Int32]
    /// Bytes some token starts with.
    private let firstBytes: [Bool]

    init(_ tokens: [(bytes: [UInt8], id: Int32)]) {
        var children: [Int: Int32] = [:]
        var ids: [Int32] = [-1]
        var firstBytes = [Bool](repeating: false, count: 256)
        for token in tokens where !token.bytes.isEmpty {
            firstBytes[Int(token.bytes[0])] = true
            var node: Int32 = 0
            for b in token.bytes {
                let key = Int(node) << 8 | Int(b)
                if let child = children[key] {
                    node = child
                } else {
                    ids.append(-1)
                    children[key] = Int32(ids.count - 1)
                    node = Int32(ids.count - 1)
                }
            }
            if ids[Int(node)] < 0 { ids[Int(node)] = token.id }
        }
        self.children = children
        self.ids = ids
        self.firstBytes = firstBytes
    }

    /// The longest token at byte `i`: its length and id.
    @inline(__always)
    func match(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (Int, Int32)? {
        guard firstBytes[Int(bytes[i])] else { return nil }
        var node: Int32 = 0
        var best: (Int, Int32)?
        var j = i
        while j < bytes.count, let child = children[Int(node) << 8 | Int(bytes[j])] {
            node = child
            j += 1
            if ids[Int(node)] >= 0 { best = (j - i, ids[Int(node)]) }
        }
        return best
    }
}

/// `post_processor`: the special tokens that `add_special_tokens=True` puts around a single
/// sequence. TemplateProcessing's `single` template, possibly inside a Sequence (ByteLevel steps
/// there change offsets only); templates in a Sequence apply in order.
struct PostProcessor: Sendable {
    enum Piece: Sendable {
        case special([Int])
        case sequence
    }

    let templates: [[Piece]]

    func apply(_ ids: [Int32]) -> [Int] {
        templates.reduce(ids.map(Int.init)) { ids, template in
            template.flatMap { piece -> [Int] in
                switch piece {
                case .special(let special): return special
                case .sequence: return ids
                }
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
        var i = bytes.count - 1
        var back = 0
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
