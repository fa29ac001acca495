/// A JSON value the server writes: answers, stream chunks, errors. Object members keep the order
/// they are written in (a dictionary literal keeps its order), so a chunk reads `id`, `object`,
/// `created`, `model`, `choices` as OpenAI's do.
///
/// A streamed answer writes one of these per token on rank 0, beside the compute thread:
/// JSONSerialization on `[String: Any]` (boxing, dynamic casts, sorting keys through ICU) cost
/// about a fifth of rank 0's CPU time at concurrency 16 on the demo model; this writer appends
/// bytes to one string.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    indirect case array([JSONValue])
    indirect case object([(String, JSONValue)])

    /// Compact JSON text (no spaces), strings escaped as RFC 8259 requires and nothing more
    /// (`/` and non-ASCII characters are written as they are).
    var text: String {
        var out = ""
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .string(let value): Self.write(string: value, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                Self.write(string: key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    /// `"…"` with `"`, `\` and the control characters U+0000-U+001F escaped.
    static func write(string: String, into out: inout String) {
        out += "\""
        guard string.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
            out += string
            out += "\""
            return
        }
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16, uppercase: false)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
    init(nilLiteral: ()) { self = .null }

    /// A string, or null.
    init(_ value: String?) { self = value.map(JSONValue.string) ?? .null }

    /// An array of integers (token ids).
    init(_ values: [Int]) { self = .array(values.map(JSONValue.int)) }
}
