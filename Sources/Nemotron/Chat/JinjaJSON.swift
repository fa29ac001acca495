/// JSON in and out as Python's `json` module does it: `json.loads` keeping key order and the
/// int/float distinction (plus `NaN` and `Infinity`), and `json.dumps`, which the `tojson`
/// filter of `transformers` calls with `ensure_ascii=False`.
extension JinjaValue {
    /// Parses JSON text (as `json.loads`); object keys keep their order.
    public init(json text: String) throws {
        var reader = JSONReader(text)
        self = try reader.document()
    }

    /// `json.dumps(value, ensure_ascii=..., indent=..., separators=..., sort_keys=...)`.
    func jsonDumps(
        ensureASCII: Bool = false, indent: String? = nil, separators: (String, String)? = nil,
        sortKeys: Bool = false
    ) throws -> String {
        let writer = JSONWriter(
            ensureASCII: ensureASCII, indent: indent,
            itemSeparator: separators?.0 ?? (indent == nil ? ", " : ","),
            keySeparator: separators?.1 ?? ": ", sortKeys: sortKeys)
        var out = ""
        try writer.write(self, level: 0, into: &out)
        return out
    }

    /// This value as compact JSON (`json.dumps` defaults).
    public var jsonText: String? { try? jsonDumps() }
}

private struct JSONWriter {
    let ensureASCII: Bool
    let indent: String?
    let itemSeparator: String
    let keySeparator: String
    let sortKeys: Bool

    func write(_ value: JinjaValue, level: Int, into out: inout String) throws {
        switch value.storage {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN {
                out += "NaN"
            } else if d.isInfinite {
                out += d < 0 ? "-Infinity" : "Infinity"
            } else {
                out += PythonFormat.float(d)
            }
        case .string(let s), .markup(let s): writeString(s, into: &out)
        case .list(let items), .tuple(let items):
            try writeContainer(items, open: "[", close: "]", level: level, into: &out) { item, out in
                try write(item, level: level + 1, into: &out)
            }
        case .dict(let d):
            var pairs = Array(d.pairs)
            if sortKeys { pairs.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) } }
            try writeContainer(pairs, open: "{", close: "}", level: level, into: &out) { pair, out in
                writeString(pair.0, into: &out)
                out += keySeparator
                try write(pair.1, level: level + 1, into: &out)
            }
        default:
            throw JinjaFailure.render("Object of type \(value.typeName) is not JSON serializable")
        }
    }

    private func writeContainer<T>(
        _ items: [T], open: String, close: String, level: Int, into out: inout String,
        item: (T, inout String) throws -> Void
    ) throws {
        if items.isEmpty {
            out += open + close
            return
        }
        out += open
        let newline = indent.map { "\n" + String(repeating: $0, count: level + 1) }
        if let newline { out += newline }
        for (i, element) in items.enumerated() {
            if i > 0 { out += itemSeparator + (newline ?? "") }
            try item(element, &out)
        }
        if let indent { out += "\n" + String(repeating: indent, count: level) }
        out += close
    }

    private func writeString(_ s: String, into out: inout String) {
        JSONString.write(s, ensureASCII: ensureASCII, into: &out)
    }
}

/// A JSON parser that keeps object key order and tells ints from floats, as `json.loads`.
private struct JSONReader {
    let bytes: [UInt8]
    var pos = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    mutating func document() throws -> JinjaValue {
        let value = try parseValue(depth: 0)
        skipSpace()
        if pos < bytes.count { throw fail("extra data") }
        return value
    }

    private func fail(_ what: String) -> ChatTemplateError {
        var line = 1
        var column = 1
        for b in bytes[0..<min(pos, bytes.count)] {
            if b == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
        }
        return ChatTemplateError(.input, "invalid JSON: \(what) at line \(line), column \(column)")
    }

    private mutating func skipSpace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    private mutating func consume(_ literal: String) -> Bool {
        let l = Array(literal.utf8)
        guard pos + l.count <= bytes.count, Array(bytes[pos..<(pos + l.count)]) == l else { return false }
        pos += l.count
        return true
    }

    private mutating func parseValue(depth: Int) throws -> JinjaValue {
        guard depth < 512 else { throw fail("nesting too deep") }
        skipSpace()
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var dict = JinjaDict()
            skipSpace()
            if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") {
                pos += 1
                return .dict(dict)
            }
            while true {
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipSpace()
                guard consume(":") else { throw fail("expected ':'") }
                dict[key] = try parseValue(depth: depth + 1)
                skipSpace()
                if consume(",") { continue }
                if consume("}") { return .dict(dict) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [JinjaValue] = []
            skipSpace()
            if consume("]") { return .list(items) }
            while true {
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                if consume(",") { continue }
                if consume("]") { return .list(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try parseString())
        default:
            if consume("true") { return .bool(true) }
            if consume("false") { return .bool(false) }
            if consume("null") { return .null }
            if consume("NaN") { return .double(.nan) }
            if consume("Infinity") { return .double(.infinity) }
            if consume("-Infinity") { return .double(-.infinity) }
            return try parseNumber()
        }
    }

    private mutating func parseNumber() throws -> JinjaValue {
        let start = pos
        func digits() -> Int {
            let s = pos
            while pos < bytes.count, bytes[pos] >= UInt8(ascii: "0"), bytes[pos] <= UInt8(ascii: "9") { pos += 1 }
            return pos - s
        }
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        let intStart = pos
        let intDigits = digits()
        guard intDigits > 0, !(intDigits > 1 && bytes[intStart] == UInt8(ascii: "0")) else {
            pos = start
            throw fail("expected a value")
        }
        var isFloat = false
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard digits() > 0 else { throw fail("expected digits after '.'") }
            isFloat = true
        }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            pos += 1
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard digits() > 0 else { throw fail("expected exponent digits") }
            isFloat = true
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if !isFloat {
            guard let i = Int(text) else { throw fail("integer \(text) does not fit in 64 bits") }
            return .int(i)
        }
        guard let d = Double(text) else { throw fail("bad number \(text)") }
        return .double(d)
    }

    private mutating func parseString() throws -> String {
        pos += 1
        var out = String.UnicodeScalarView()
        var runStart = pos
        func flush(_ end: Int) {
            out.append(contentsOf: String(decoding: bytes[runStart..<end], as: UTF8.self).unicodeScalars)
        }
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                flush(pos)
                pos += 1
                return String(out)
            }
            if b < 0x20 { throw fail("control character in string") }
            if b != UInt8(ascii: "\\") {
                pos += 1
                continue
            }
            flush(pos)
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append("\"")
            case UInt8(ascii: "\\"): out.append("\\")
            case UInt8(ascii: "/"): out.append("/")
            case UInt8(ascii: "b"): out.append("\u{08}")
            case UInt8(ascii: "f"): out.append("\u{0C}")
            case UInt8(ascii: "n"): out.append("\n")
            case UInt8(ascii: "r"): out.append("\r")
            case UInt8(ascii: "t"): out.append("\t")
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), consume("\\u") {
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("unpaired surrogate") }
                out.append(scalar)
            default: throw fail("invalid escape")
            }
            runStart = pos
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[pos..<(pos + 4)], as: UTF8.self), radix: 16)
        else { throw fail("bad \\u escape") }
        pos += 4
        return v
    }
}

/// A JSON string literal, escaped as Python's `json.dumps` escapes it: `"`, `\`, the named
/// control characters, other code points below U+0020 as `\u00xx`, and, with `ensureASCII`, every
/// code point above U+007E (beyond the BMP as a surrogate pair). Shared by the chat templates'
/// `tojson` and the server's answers (NemotronServer's JSONValue).
public enum JSONString {
    public static func write(_ s: String, ensureASCII: Bool = false, into out: inout String) {
        out += "\""
        // Most strings (a token's text) need no escape: appended whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || (ensureASCII && $0 > 0x7E) }) {
            out += s
            out += "\""
            return
        }
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                    if c.value >= 0x10000 {
                        let v = c.value - 0x10000
                        out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
                    } else {
                        out += hex4(c.value)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
