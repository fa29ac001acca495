import Foundation

/// Splits text into the pieces BPE runs on. The three split patterns byte-level tokenizers use in
/// practice (GPT-2's, Llama 3's and Mistral's tekken, which Nemotron-H's tokenizers use) have
/// exact hand-written scanners over Unicode scalars, following the leftmost-first, backtracking
/// semantics of the Oniguruma regex `tokenizers` runs; any other pattern runs through
/// NSRegularExpression.
enum SplitPattern {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|`
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|`
    /// `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|`
    /// `\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case tekken
    case regex(NSRegularExpression)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"#
        + #" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let tekkenSource =
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"#
        + #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"#
        + #"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init(source: String) throws {
        switch source {
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source: self = .llama3
        case Self.tekkenSource: self = .tekken
        default:
            do { self = .regex(try NSRegularExpression(pattern: source)) } catch {
                throw NemotronError.invalidArgument(
                    name: "tokenizer.json pre_tokenizer Split pattern", value: source,
                    expected: "a regular expression NSRegularExpression accepts")
            }
        }
    }

    /// Calls `body` with the byte range of each piece of `text` (UTF-8), in order, covering
    /// every byte (Isolated behaviour).
    func forEachPiece(in text: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Void) {
        let scanner = Scanner(bytes: text)
        var start = 0
        while start < text.count {
            let end: Int
            switch self {
            case .gpt2: end = scanner.gpt2Match(at: start)
            case .llama3: end = scanner.llama3Match(at: start)
            case .tekken: end = scanner.tekkenMatch(at: start)
            case .regex(let regex):
                for piece in Self.regexPieces(regex, Array(text)) { body(piece) }
                return
            }
            body(start..<end)
            start = end
        }
    }

    /// The pieces of `text` as byte ranges (for tests and callers that want them all at once).
    func split(_ text: [UInt8]) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        text.withUnsafeBufferPointer { buffer in forEachPiece(in: buffer) { pieces.append($0) } }
        return pieces
    }

    /// Matches are in UTF-16 offsets; they map to UTF-8 offsets scalar by scalar (a `Range` of
    /// `String.Index` would round them to whole characters and swallow combining marks).
    private static func regexPieces(_ regex: NSRegularExpression, _ text: [UInt8]) -> [Range<Int>] {
        let string = String(decoding: text, as: UTF8.self)
        var utf8Offset: [Int] = [0]
        for scalar in string.unicodeScalars {
            let end = utf8Offset.last! + UTF8.width(scalar)
            if UTF16.width(scalar) == 2 { utf8Offset.append(end) }
            utf8Offset.append(end)
        }
        var pieces: [Range<Int>] = []
        var last = 0
        for match in regex.matches(in: string, range: NSRange(location: 0, length: utf8Offset.count - 1)) {
            let lower = utf8Offset[match.range.lowerBound]
            let upper = utf8Offset[match.range.upperBound]
            if lower > last { pieces.append(last..<lower) }
            if upper > lower { pieces.append(lower..<upper) }
            last = upper
        }
        if last < text.count { pieces.append(last..<text.count) }
        return pieces
    }
}

/// Character classes of the split patterns, decoded from UTF-8 on the fly. The classes are
/// those the three patterns tell apart: the letter cases of tekken's `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`
/// and `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`, numbers, `\s` (Unicode White_Space, as Oniguruma's) with CR
/// and LF apart, and everything else.
private struct Scanner {
    enum Class: UInt8 {
        /// Lu, Lt
        case upper
        /// Ll
        case lower
        /// Lm, Lo: in both of tekken's letter sets
        case otherLetter
        /// Mn, Mc, Me: in both of tekken's letter sets, but not `\p{L}`
        case mark
        /// Nd, Nl, No
        case number
        /// `\s` other than CR and LF
        case space
        /// CR, LF
        case newline
        case other

        var isLetter: Bool { self == .upper || self == .lower || self == .otherLetter }
        var isWhitespace: Bool { self == .space || self == .newline }
        /// `[^\s\p{L}\p{N}]`
        var isSymbol: Bool { self == .other || self == .mark }
        /// `[^\r\n\p{L}\p{N}]`
        var isPrefix: Bool { self == .other || self == .mark || self == .space }
        /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`
        var isUpperSet: Bool { self == .upper || self == .otherLetter || self == .mark }
        /// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`
        var isLowerSet: Bool { self == .lower || self == .otherLetter || self == .mark }
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var count: Int { bytes.count }

    /// The class of the scalar at byte `i` and its byte length.
    @inline(__always)
    func scalar(at i: Int) -> (Class, Int) {
        let b = bytes[i]
        if b < 0x80 { return (Self.ascii[Int(b)], 1) }
        var value: UInt32
        var length: Int
        if b >= 0xF0 {
            value = UInt32(b & 0x07)
            length = 4
        } else if b >= 0xE0 {
            value = UInt32(b & 0x0F)
            length = 3
        } else {
            value = UInt32(b & 0x1F)
            length = 2
        }
        length = min(length, count - i)
        for k in 1..<max(length, 1) { value = value << 6 | UInt32(bytes[i + k] & 0x3F) }
        guard let scalar = Unicode.Scalar(value) else { return (.other, length) }
        return (Self.classify(scalar), length)
    }

    static func classify(_ scalar: Unicode.Scalar) -> Class {
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .titlecaseLetter: return .upper
        case .lowercaseLetter: return .lower
        case .modifierLetter, .otherLetter: return .otherLetter
        case .nonspacingMark, .spacingMark, .enclosingMark: return .mark
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return properties.isWhitespace ? (scalar == "\r" || scalar == "\n" ? .newline : .space) : .other
        }
    }

    static let ascii: [Class] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    @inline(__always)
    func cls(_ i: Int) -> Class? { i < count ? scalar(at: i).0 : nil }

    /// End of the run of scalars from `i` whose class satisfies `keep`.
    @inline(__always)
    func run(from i: Int, _ keep: (Class) -> Bool) -> Int {
        var j = i
        while j < count {
            let (c, n) = scalar(at: j)
            if !keep(c) { break }
            j += n
        }
        return j
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive: the match end, or nil.
    func contraction(at i: Int, ignoreCase: Bool) -> Int? {
        guard bytes[i] == UInt8(ascii: "'"), i + 1 < count else { return nil }
        func lower(_ b: UInt8) -> UInt8 { ignoreCase && b >= 65 && b <= 90 ? b + 32 : b }
        switch lower(bytes[i + 1]) {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"): return i + 2
        case let a where i + 2 < count:
            let b = lower(bytes[i + 2])
            let pair = (a, b)
            if pair == (UInt8(ascii: "r"), UInt8(ascii: "e")) || pair == (UInt8(ascii: "v"), UInt8(ascii: "e"))
                || pair == (UInt8(ascii: "l"), UInt8(ascii: "l"))
            {
                return i + 3
            }
            return nil
        default: return nil
        }
    }

    /// `\s+(?!\S)|\s+` from a whitespace scalar at `i`.
    func whitespace(at i: Int) -> Int {
        let end = run(from: i) { $0.isWhitespace }
        if end == count { return end }
        // Give the last whitespace scalar back to the next piece, if one remains.
        var last = end - 1
        while last > i && bytes[last] & 0xC0 == 0x80 { last -= 1 }
        return last > i ? last : end
    }

    /// `\s*[\r\n]+` from a whitespace scalar at `i`: through the last CR or LF of the
    /// whitespace run, or nil when the run has none.
    func whitespaceThroughNewline(at i: Int) -> Int? {
        var j = i
        var lastNewline: Int?
        while j < count {
            let (c, n) = scalar(at: j)
            guard c.isWhitespace else { break }
            j += n
            if c == .newline { lastNewline = j }
        }
        return lastNewline
    }

    func gpt2Match(at i: Int) -> Int {
        if let end = contraction(at: i, ignoreCase: false) { return end }
        let (c, n) = scalar(at: i)
        let afterSpace = bytes[i] == 0x20 ? cls(i + n) : nil
        if c.isLetter || afterSpace?.isLetter == true { return run(from: c.isLetter ? i : i + n) { $0.isLetter } }
        if c == .number || afterSpace == .number { return run(from: c == .number ? i : i + n) { $0 == .number } }
        if c.isSymbol || afterSpace?.isSymbol == true { return run(from: c.isSymbol ? i : i + n) { $0.isSymbol } }
        return whitespace(at: i)
    }

    func llama3Match(at i: Int) -> Int {
        if let end = contraction(at: i, ignoreCase: true) { return end }
        let (c, n) = scalar(at: i)
        let next = cls(i + n)
        if c.isLetter { return run(from: i) { $0.isLetter } }
        if c.isPrefix && next?.isLetter == true { return run(from: i + n) { $0.isLetter } }
        if c == .number {
            var j = i
            var digits = 0
            while j < count && digits < 3 {
                let (k, m) = scalar(at: j)
                guard k == .number else { break }
                j += m
                digits += 1
            }
            return j
        }
        if c.isSymbol || (bytes[i] == 0x20 && next?.isSymbol == true) {
            let end = run(from: c.isSymbol ? i : i + n) { $0.isSymbol }
            return run(from: end) { $0 == .newline }
        }
        return whitespaceThroughNewline(at: i) ?? whitespace(at: i)
    }

    /// Tekken's alternatives in order, each with the regex's backtracking resolved: the first
    /// two (an optional prefix, then a cased word) are tried with the prefix, then without it
    /// (only a mark can be both prefix and word), alternative 1 before alternative 2.
    func tekkenMatch(at i: Int) -> Int {
        let (c, n) = scalar(at: i)
        if c.isPrefix {
            if let end = lowerTailWord(at: i + n) { return end }
            if c == .mark, let end = lowerTailWord(at: i) { return end }
            if let end = upperHeadWord(at: i + n) { return end }
        } else if c.isLetter {
            if let end = lowerTailWord(at: i) ?? upperHeadWord(at: i) { return end }
        }
        if c == .number { return i + n }
        // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
        let start = bytes[i] == 0x20 ? i + n : i
        if start == i ? c.isSymbol : cls(start)?.isSymbol == true {
            var end = run(from: start) { $0.isSymbol }
            while end < count && (bytes[end] == 0x0D || bytes[end] == 0x0A || bytes[end] == UInt8(ascii: "/")) {
                end += 1
            }
            return end
        }
        return whitespaceThroughNewline(at: i) ?? whitespace(at: i)
    }

    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` at `p`, or nil. The greedy
    /// upper run backs off to the last scalar that is in both sets when no lowercase letter
    /// follows it; the lowercase run then holds just that scalar.
    func lowerTailWord(at p: Int) -> Int? {
        var j = p
        var lastBothEnd: Int?
        while j < count {
            let (c, m) = scalar(at: j)
            guard c.isUpperSet else { break }
            j += m
            if c != .upper { lastBothEnd = j }
        }
        if j < count && scalar(at: j).0 == .lower { return run(from: j) { $0.isLowerSet } }
        return lastBothEnd
    }

    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*` at `p`, or nil.
    func upperHeadWord(at p: Int) -> Int? {
        let j = run(from: p) { $0.isUpperSet }
        return j == p ? nil : run(from: j) { $0.isLowerSet }
    }
}

/// GPT-2's reversible map from bytes to printable characters, used by byte-level BPE.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var map = [Int](repeating: 0, count: 256)
        for b in printable { map[b] = b }
        var extra = 0
        for b in 0..<256 where !printable.contains(b) {
            map[b] = 256 + extra
            extra += 1
            printable.append(b)
        }
        return map.map { Unicode.Scalar(UInt32($0))! }
    }()

    static let scalarToByte: [UInt32: UInt8] = Dictionary(
        uniqueKeysWithValues: byteToScalar.enumerated().map { ($1.value, UInt8($0)) })
}
