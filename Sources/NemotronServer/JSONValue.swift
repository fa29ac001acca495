import Nemotron

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
        case .string(let value): JSONString.write(value, into: &out)
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
                JSONString.write(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
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
