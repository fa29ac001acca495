import Foundation

/// Reads JSON as Python's `json` module writes and reads it, for Hugging Face config files:
/// RFC 8259 plus the bare literals `NaN`, `Infinity` and `-Infinity` outside strings (Python's
/// `json.dumps` writes `float("inf")` as `Infinity`, as in Nemotron-H's
/// `"time_step_limit": [0.0, Infinity]`). Strings keep every scalar as written, a leading U+FEFF
/// included (Foundation's `JSONSerialization` drops it). Anything else is an error naming the
/// file, line and column.
///
/// Values come out as `JSONSerialization` gives them: `[String: Any]`, `[Any]`, `String`,
/// `NSNumber` for numbers, `Bool`, `NSNull`. A repeated key keeps its last value, as in Python,
/// unless `rejectingDuplicateKeys` (a safetensors header, where a repeated tensor name is an error).
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private let path: String
    private var position = 0
    private var depth = 0
    private var rejectsDuplicateKeys = false

    /// Parses one JSON value filling the whole of `data` (surrounding whitespace allowed).
    static func parse(_ data: Data, path: String, rejectingDuplicateKeys: Bool = false) throws -> Any {
        try data.withUnsafeBytes { raw in
            var parser = JSONParser(bytes: raw.bindMemory(to: UInt8.self), path: path)
            parser.rejectsDuplicateKeys = rejectingDuplicateKeys
            // A UTF-8 byte order mark before the text is not part of it.
            if parser.bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.position = 3 }
            let value = try parser.value()
            parser.skipWhitespace()
            guard parser.position == parser.bytes.count else { throw parser.error("extra data after the JSON value") }
            return value
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, path: String) {
        self.bytes = bytes
        self.path = path
    }

    // MARK: - Values

    private mutating func value() throws -> Any {
        skipWhitespace()
        guard position < bytes.count else { throw error("expected a value, found the end of the file") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            if literal("-Infinity") { return NSNumber(value: -Double.infinity) }
            return try number()
        default:
            if literal("true") { return true }
            if literal("false") { return false }
            if literal("null") { return NSNull() }
            if literal("NaN") { return NSNumber(value: Double.nan) }
            if literal("Infinity") { return NSNumber(value: Double.infinity) }
            throw error("expected a value, found \(found())")
        }
    }

    private mutating func object() throws -> [String: Any] {
        try enter()
        defer { depth -= 1 }
        position += 1
        var result: [String: Any] = [:]
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return result }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error("expected a string key in double quotes, found \(found())")
            }
            let keyStart = position
            let key = try string()
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { throw error("expected ':' after an object key, found \(found())") }
            // One hash of the key (a tokenizer's vocabulary has 10⁵ of them), not a lookup and an insert.
            if result.updateValue(try value(), forKey: key) != nil && rejectsDuplicateKeys {
                throw error("the key \"\(key)\" appears twice", at: keyStart)
            }
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "}")) { return result }
            throw error("expected ',' or '}' in an object, found \(found())")
        }
    }

    private mutating func array() throws -> [Any] {
        try enter()
        defer { depth -= 1 }
        position += 1
        var result: [Any] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return result }
        while true {
            result.append(try value())
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "]")) { return result }
            throw error("expected ',' or ']' in an array, found \(found())")
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`: an integer without fraction or exponent
    /// stays an integer when it fits in 64 bits (Python's are unbounded; larger ones become doubles).
    private mutating func number() throws -> NSNumber {
        let start = position
        func digits(_ parser: inout JSONParser) -> Int {
            let first = parser.position
            while parser.position < parser.bytes.count,
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(parser.bytes[parser.position])
            {
                parser.position += 1
            }
            return parser.position - first
        }
        _ = consume(UInt8(ascii: "-"))
        if consume(UInt8(ascii: "0")) {
            // A leading zero stands alone: "01" is 0 followed by extra data, as in Python.
        } else if digits(&self) == 0 {
            throw error("expected a digit, found \(found())")
        }
        var isInteger = true
        if position + 1 < bytes.count, bytes[position] == UInt8(ascii: "."),
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position + 1])
        {
            position += 1
            _ = digits(&self)
            isInteger = false
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            let mark = position
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            if digits(&self) == 0 {
                position = mark  // Python stops the number before a bare "e"; what follows is an error.
            } else {
                isInteger = false
            }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isInteger, let integer = Int(text) { return NSNumber(value: integer) }
        return NSNumber(value: Double(text) ?? .nan)
    }

    /// The bytes of `run` (no escapes in it) as a string, or an error when they are not UTF-8.
    private func text(_ run: Range<Int>) throws -> String {
        guard let text = String(validating: UnsafeBufferPointer(rebasing: bytes[run]), as: UTF8.self) else {
            throw error("invalid UTF-8 in a string", at: run.lowerBound)
        }
        return text
    }

    private mutating func string() throws -> String {
        let start = position
        position += 1
        var scalars = String.UnicodeScalarView()
        var runStart = position
        func flush(_ parser: JSONParser, upTo end: Int) throws {
            guard runStart < end else { return }
            scalars.append(contentsOf: try parser.text(runStart..<end).unicodeScalars)
        }
        while true {
            guard position < bytes.count else { throw error("unterminated string", at: start) }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                // No escape: the run is the string (most keys and values; appending its scalars to
                // a view one by one took a fifth of a large tokenizer.json's load).
                if runStart == start + 1 {
                    let whole = try text(runStart..<position)
                    position += 1
                    return whole
                }
                try flush(self, upTo: position)
                position += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                try flush(self, upTo: position)
                position += 1
                scalars.append(try escape())
                runStart = position
            case 0..<0x20:
                throw error("invalid control character U+\(String(format: "%04X", byte)) in a string")
            default:
                position += 1
            }
        }
    }

    /// The escape after a backslash; `\uD83D\uDE00` pairs become one scalar, and a lone
    /// surrogate (which Python keeps but a Swift string cannot hold) becomes U+FFFD.
    private mutating func escape() throws -> Unicode.Scalar {
        guard position < bytes.count else { throw error("unterminated string") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{8}"
        case UInt8(ascii: "f"): return "\u{C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try hex4()
            if (0xD800..<0xDC00).contains(unit), position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                bytes[position + 1] == UInt8(ascii: "u")
            {
                let mark = position
                position += 2
                let low = try hex4()
                if (0xDC00..<0xE000).contains(low) {
                    return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
                }
                position = mark
            }
            return Unicode.Scalar(unit) ?? "\u{FFFD}"
        default:
            throw error("invalid escape in a string", at: position - 2)
        }
    }

    private mutating func hex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard position < bytes.count, let digit = hexDigit(bytes[position]) else {
                throw error("expected four hex digits after \\u")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    // MARK: - Helpers

    private mutating func enter() throws {
        depth += 1
        if depth > 512 { throw error("nesting deeper than 512 levels") }
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// Consumes `word` if the text continues with it.
    private mutating func literal(_ word: StaticString) -> Bool {
        word.withUTF8Buffer { word in
            guard position + word.count <= bytes.count,
                UnsafeBufferPointer(rebasing: bytes[position..<position + word.count]).elementsEqual(word)
            else { return false }
            position += word.count
            return true
        }
    }

    /// The text at the current position, quoted, for messages: up to the next delimiter.
    private func found(length: Int = 12) -> String {
        guard position < bytes.count else { return "the end of the file" }
        var end = position
        while end < bytes.count, end - position < length {
            let byte = bytes[end]
            if end > position
                && (byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0x2C
                    || byte == 0x5D || byte == 0x7D || byte == 0x3A)
            {
                break
            }
            end += 1
        }
        return "'" + String(decoding: UnsafeBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self) + "'"
    }

    /// An error at `offset` (default: the current position), with a 1-based line and a column
    /// counted in characters (Unicode scalars), as Python's `json.JSONDecodeError` counts them.
    private func error(_ message: String, at offset: Int? = nil) -> NemotronError {
        let offset = min(offset ?? position, bytes.count)
        var line = 1
        var lineStart = 0
        for i in 0..<offset where bytes[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        let column = 1 + bytes[lineStart..<offset].filter { $0 & 0xC0 != 0x80 }.count
        return .fileUnreadable(path: path, reason: "invalid JSON at line \(line), column \(column): \(message)")
    }
}
