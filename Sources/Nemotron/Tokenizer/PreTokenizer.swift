import Foundation

/// Splits text into the pieces BPE runs on. The two split patterns byte-level tokenizers use in
/// practice have exact hand-written scanners over Unicode scalars (regex engines are too slow
/// for the 5 MB/s goal); any other pattern runs through NSRegularExpression.
enum SplitPattern {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    case regex(NSRegularExpression)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init(source: String) throws {
        switch source {
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source: self = .llama3
        default:
            do { self = .regex(try NSRegularExpression(pattern: source)) } catch {
                throw NemotronError.invalidArgument(name: "tokenizer.json pre_tokenizer Split pattern", value: source,
                                                    expected: "a regular expression NSRegularExpression accepts")
            }
        }
    }

    /// Byte ranges of the pieces of `text` (UTF-8), in order, covering every byte (Isolated).
    func split(_ text: [UInt8]) -> [Range<Int>] {
        switch self {
        case .gpt2, .llama3:
            let scanner = Scanner(bytes: text)
            var pieces: [Range<Int>] = []
            var start = 0
            while start < text.count {
                let end = self == .gpt2 ? scanner.gpt2Match(at: start) : scanner.llama3Match(at: start)
                pieces.append(start..<end)
                start = end
            }
            return pieces
        case .regex(let regex):
            let string = String(decoding: text, as: UTF8.self)
            let utf8 = Array(string.utf8)
            var pieces: [Range<Int>] = []
            var last = 0
            for match in regex.matches(in: string, range: NSRange(string.startIndex..., in: string)) {
                guard let range = Range(match.range, in: string) else { continue }
                let lower = string.utf8.distance(from: string.startIndex, to: range.lowerBound)
                let upper = string.utf8.distance(from: string.startIndex, to: range.upperBound)
                if lower > last { pieces.append(last..<lower) }
                if upper > lower { pieces.append(lower..<upper) }
                last = upper
            }
            if last < utf8.count { pieces.append(last..<utf8.count) }
            return pieces
        }
    }

    static func == (a: SplitPattern, b: SplitPattern) -> Bool {
        switch (a, b) {
        case (.gpt2, .gpt2), (.llama3, .llama3): return true
        default: return false
        }
    }
}

/// Character classes of the split patterns, decoded from UTF-8 on the fly.
private struct Scanner {
    enum Class { case letter, number, space, newline, other }

    let bytes: [UInt8]

    /// The scalar at byte `i`: its class, value and byte length.
    func scalar(at i: Int) -> (Class, UInt32, Int) {
        let b = bytes[i]
        if b < 0x80 { return (Self.ascii[Int(b)], UInt32(b), 1) }
        var value: UInt32, length: Int
        if b >= 0xF0 { value = UInt32(b & 0x07); length = 4 } else if b >= 0xE0 { value = UInt32(b & 0x0F); length = 3 } else {
            value = UInt32(b & 0x1F); length = 2
        }
        for k in 1..<length where i + k < bytes.count { value = value << 6 | UInt32(bytes[i + k] & 0x3F) }
        length = min(length, bytes.count - i)
        guard let scalar = Unicode.Scalar(value) else { return (.other, value, length) }
        return (Self.classify(scalar), value, length)
    }

    static func classify(_ scalar: Unicode.Scalar) -> Class {
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return properties.isWhitespace ? (scalar == "\r" || scalar == "\n" ? .newline : .space) : .other
        }
    }

    static let ascii: [Class] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    func cls(_ i: Int) -> Class? { i < bytes.count ? scalar(at: i).0 : nil }
    func isWhite(_ c: Class?) -> Bool { c == .space || c == .newline }

    /// End of the run of scalars from `i` whose class satisfies `keep`.
    func run(from i: Int, _ keep: (Class) -> Bool) -> Int {
        var j = i
        while j < bytes.count {
            let (c, _, n) = scalar(at: j)
            if !keep(c) { break }
            j += n
        }
        return j
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive: the match end, or nil.
    func contraction(at i: Int, ignoreCase: Bool) -> Int? {
        guard bytes[i] == UInt8(ascii: "'"), i + 1 < bytes.count else { return nil }
        func lower(_ b: UInt8) -> UInt8 { ignoreCase && b >= 65 && b <= 90 ? b + 32 : b }
        let a = lower(bytes[i + 1])
        if [UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d")].contains(a) { return i + 2 }
        guard i + 2 < bytes.count else { return nil }
        let b = lower(bytes[i + 2])
        for (x, y) in [("r", "e"), ("v", "e"), ("l", "l")] where a == UInt8(ascii: Unicode.Scalar(x)!) && b == UInt8(ascii: Unicode.Scalar(y)!) {
            return i + 3
        }
        return nil
    }

    /// `\s+(?!\S)|\s+` from a whitespace scalar at `i`.
    func whitespace(at i: Int) -> Int {
        let end = run(from: i) { $0 == .space || $0 == .newline }
        if end == bytes.count { return end }
        // Give the last whitespace scalar back to the next piece, if one remains.
        var last = end - 1
        while last > i && bytes[last] & 0xC0 == 0x80 { last -= 1 }
        return last > i ? last : end
    }

    func gpt2Match(at i: Int) -> Int {
        if let end = contraction(at: i, ignoreCase: false) { return end }
        let (c, value, n) = scalar(at: i)
        let afterSpace = value == 0x20 ? cls(i + n) : nil
        if c == .letter || afterSpace == .letter { return run(from: c == .letter ? i : i + n) { $0 == .letter } }
        if c == .number || afterSpace == .number { return run(from: c == .number ? i : i + n) { $0 == .number } }
        if c == .other || afterSpace == .other { return run(from: c == .other ? i : i + n) { $0 == .other } }
        return whitespace(at: i)
    }

    func llama3Match(at i: Int) -> Int {
        if let end = contraction(at: i, ignoreCase: true) { return end }
        let (c, value, n) = scalar(at: i)
        let next = cls(i + n)
        if c == .letter { return run(from: i) { $0 == .letter } }
        if c != .newline && c != .number && next == .letter { return run(from: i + n) { $0 == .letter } }
        if c == .number {
            var j = i, count = 0
            while j < bytes.count && count < 3, scalar(at: j).0 == .number { j += scalar(at: j).2; count += 1 }
            return j
        }
        if c == .other || (value == 0x20 && next == .other) {
            let end = run(from: c == .other ? i : i + n) { $0 == .other }
            return run(from: end) { $0 == .newline }
        }
        // \s*[\r\n]+ : through the last newline of the whitespace run.
        let end = run(from: i) { $0 == .space || $0 == .newline }
        var j = i, lastNewline: Int?
        while j < end {
            let (k, _, m) = scalar(at: j)
            if k == .newline { lastNewline = j + m }
            j += m
        }
        if let lastNewline { return lastNewline }
        return whitespace(at: i)
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

    static let scalarToByte: [UInt32: UInt8] = Dictionary(uniqueKeysWithValues: byteToScalar.enumerated().map { ($1.value, UInt8($0)) })
}
