import Foundation

/// How Python treats each value when Jinja prints, tests, compares or concatenates it:
/// `str()`, `repr()`, truthiness, `==` and ordering.
extension JinjaValue {
    /// Python's type name, for error messages.
    var typeName: String {
        switch storage {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .markup: return "Markup"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .view(let view):
            switch view.kind {
            case .dictKeys: return "dict_keys"
            case .dictValues: return "dict_values"
            case .dictItems: return "dict_items"
            case .range: return "range"
            case .iterator(let name): return name
            }
        case .loop: return "LoopContext"
        case .macro: return "Macro"
        case .method: return "builtin_function_or_method"
        case .function: return "function"
        }
    }

    /// Python's `bool(value)`.
    var isTruthy: Bool {
        switch storage {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .list(let items), .tuple(let items): return !items.isEmpty
        case .dict(let d): return d.count > 0
        case .view(let view):
            if case .iterator = view.kind { return true }
            return !view.items.isEmpty
        case .loop(let loop): return loop.length > 0
        case .namespace, .macro, .method, .function: return true
        }
    }

    /// Python's `str(value)`, which `{{ }}`, `~` and the `string` filter print.
    func pythonString() throws -> String {
        switch storage {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return try pythonRepr()
        }
    }

    /// Python's `repr(value)`, used for the items of printed containers.
    func pythonRepr() throws -> String { try pythonRepr(inside: []) }

    /// `repr` within the namespaces being printed (`open`): a namespace that holds itself prints
    /// as `<Namespace {...}>` where it recurs, as Python's recursion guard prints it (it recursed
    /// until the stack overflowed; found by the chat fuzz target).
    private func pythonRepr(inside open: Set<ObjectIdentifier>) throws -> String {
        switch storage {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return PythonFormat.float(d)
        case .string(let s): return PythonFormat.stringRepr(s)
        case .markup(let s): return "Markup(\(PythonFormat.stringRepr(s)))"
        case .list(let items):
            return "[" + (try items.map { try $0.pythonRepr(inside: open) }.joined(separator: ", ")) + "]"
        case .tuple(let items):
            let inner = try items.map { try $0.pythonRepr(inside: open) }.joined(separator: ", ")
            return items.count == 1 ? "(\(inner),)" : "(\(inner))"
        case .dict(let d): return try Self.dictRepr(d, inside: open)
        case .namespace(let ns):
            let id = ObjectIdentifier(ns)
            if open.contains(id) { return "<Namespace {...}>" }
            return "<Namespace \(try Self.dictRepr(ns.attributes, inside: open.union([id])))>"
        case .view(let view):
            let inner = try view.items.map { try $0.pythonRepr(inside: open) }.joined(separator: ", ")
            switch view.kind {
            case .dictKeys: return "dict_keys([\(inner)])"
            case .dictValues: return "dict_values([\(inner)])"
            case .dictItems: return "dict_items([\(inner)])"
            case .range(let start, let stop, let step):
                return step == 1 ? "range(\(start), \(stop))" : "range(\(start), \(stop), \(step))"
            case .iterator(let name):
                throw JinjaFailure.unsupported("printing a \(name) object (Python prints its memory address)")
            }
        case .loop(let loop): return "<LoopContext \(loop.index0 + 1)/\(loop.length)>"
        case .macro(let macro): return "<Macro '\(macro.name)'>"
        case .method(_, let name):
            throw JinjaFailure.unsupported("printing the method '\(name)' (Python prints its memory address)")
        case .function(let name):
            throw JinjaFailure.unsupported("printing the function '\(name)' (Python prints its memory address)")
        }
    }

    private static func dictRepr(_ d: JinjaDict, inside open: Set<ObjectIdentifier>) throws -> String {
        let items = try d.pairs.map { "\(PythonFormat.stringRepr($0.0)): \(try $0.1.pythonRepr(inside: open))" }
        return "{" + items.joined(separator: ", ") + "}"
    }

    // MARK: - Equality and ordering

    /// The numeric value of bool, int and float, for mixed comparisons and arithmetic.
    enum Number {
        case int(Int)
        case double(Double)
    }

    var number: Number? {
        switch storage {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        default: return nil
        }
    }

    /// Python `==`.
    func pythonEquals(_ other: JinjaValue) -> Bool {
        switch (storage, other.storage) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)), (.string(let a), .markup(let b)),
            (.markup(let a), .string(let b)), (.markup(let a), .markup(let b)):
            return a.utf8.elementsEqual(b.utf8)
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.pythonEquals($1) }
        case (.dict(let a), .dict(let b)):
            return a.count == b.count
                && a.pairs.allSatisfy { key, value in b[key].map { value.pythonEquals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.macro(let a), .macro(let b)): return a === b
        case (.view(let a), .view(let b)):
            switch (a.kind, b.kind) {
            case (.range, .range):
                return a.items.count == b.items.count && zip(a.items, b.items).allSatisfy { $0.pythonEquals($1) }
            case (.dictKeys, .dictKeys), (.dictItems, .dictItems):
                return a.items.count == b.items.count
                    && a.items.allSatisfy { item in b.items.contains { $0.pythonEquals(item) } }
            default: return false
            }
        default:
            guard let x = number, let y = other.number else { return false }
            return Self.compareNumbers(x, y) == .orderedSame
        }
    }

    /// Python's `<`, `<=`, `>`, `>=`: numbers, strings by code point, lists and tuples
    /// lexicographically; anything else is a TypeError. Nil when unordered (NaN): every test is false.
    func pythonCompare(_ other: JinjaValue, operator op: String) throws -> ComparisonResult? {
        if case .undefined(let message) = storage { throw JinjaFailure.render(message) }
        if case .undefined(let message) = other.storage { throw JinjaFailure.render(message) }
        if let x = number, let y = other.number { return Self.compareNumbers(x, y) }
        switch (storage, other.storage) {
        case (.string(let a), .string(let b)), (.string(let a), .markup(let b)),
            (.markup(let a), .string(let b)), (.markup(let a), .markup(let b)):
            return a.utf8.lexicographicallyPrecedes(b.utf8)
                ? .orderedAscending
                : (a.utf8.elementsEqual(b.utf8) ? .orderedSame : .orderedDescending)
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)):
            for (x, y) in zip(a, b) where !x.pythonEquals(y) { return try x.pythonCompare(y, operator: op) }
            return a.count < b.count ? .orderedAscending : (a.count == b.count ? .orderedSame : .orderedDescending)
        default:
            throw JinjaFailure.render(
                "'\(op)' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }

    /// Exact comparison of mixed ints and floats (nil when either is NaN).
    static func compareNumbers(_ x: Number, _ y: Number) -> ComparisonResult? {
        switch (x, y) {
        case (.int(let a), .int(let b)): return a < b ? .orderedAscending : (a == b ? .orderedSame : .orderedDescending)
        case (.double(let a), .double(let b)):
            if a.isNaN || b.isNaN { return nil }
            return a < b ? .orderedAscending : (a == b ? .orderedSame : .orderedDescending)
        case (.int(let a), .double(let b)): return compareIntDouble(a, b)
        case (.double(let a), .int(let b)):
            return compareIntDouble(b, a).map {
                $0 == .orderedAscending
                    ? .orderedDescending : ($0 == .orderedDescending ? .orderedAscending : .orderedSame)
            }
        }
    }

    private static func compareIntDouble(_ i: Int, _ d: Double) -> ComparisonResult? {
        if d.isNaN { return nil }
        if d >= 9.3e18 { return .orderedAscending }
        if d <= -9.3e18 { return .orderedDescending }
        let whole = d.rounded(.down)
        let wholeInt = Int(whole)
        if i < wholeInt { return .orderedAscending }
        if i > wholeInt { return .orderedDescending }
        return whole == d ? .orderedSame : .orderedAscending
    }
}

/// Python's text forms of floats and strings.
enum PythonFormat {
    /// `repr(float)`: the shortest digits that round-trip, fixed notation when the decimal
    /// exponent is in [-4, 16), else `d.ddde±XX`.
    static func float(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        let (digits, point) = shortestDigits(abs(value))
        let sign = value < 0 ? "-" : ""
        if point > -4 && point <= 16 {
            if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + digits }
            if point >= digits.count {
                return sign + digits + String(repeating: "0", count: point - digits.count) + ".0"
            }
            let cut = digits.index(digits.startIndex, offsetBy: point)
            return sign + digits[..<cut] + "." + digits[cut...]
        }
        var mantissa = String(digits.prefix(1))
        if digits.count > 1 { mantissa += "." + digits.dropFirst() }
        let exponent = point - 1
        let magnitude = String(abs(exponent))
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" : "") + magnitude
    }

    /// The shortest round-trip decimal digits of a positive finite double (no leading or
    /// trailing zeros) and the position of the decimal point: value = 0.DIGITS × 10^point.
    /// Swift's `description` already prints the shortest round-trip form.
    private static func shortestDigits(_ value: Double) -> (String, Int) {
        let text = value.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let exponent = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        let mantissa = parts[0].split(separator: ".", maxSplits: 1)
        let whole = String(mantissa[0])
        let fraction = mantissa.count > 1 ? String(mantissa[1]) : ""
        var digits = Substring(whole + fraction)
        var point = whole.count + exponent
        while digits.first == "0" {
            digits = digits.dropFirst()
            point -= 1
        }
        while digits.last == "0" { digits = digits.dropLast() }
        return (String(digits), point)
    }

    /// `repr(str)`: single quotes unless the text has a single quote and no double quote;
    /// non-printable characters escaped as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
    static func stringRepr(_ s: String) -> String {
        let quote: Unicode.Scalar = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"") ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case quote, "\\":
                out.append("\\")
                out.append(scalar)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            default:
                if isPrintable(scalar) {
                    out.append(scalar)
                } else {
                    out.append(contentsOf: hexEscape(scalar).unicodeScalars)
                }
            }
        }
        out.append(quote)
        return String(out)
    }

    private static func hexEscape(_ scalar: Unicode.Scalar) -> String {
        let v = scalar.value
        let hex = String(v, radix: 16)
        if v < 0x100 { return "\\x" + String(repeating: "0", count: 2 - hex.count) + hex }
        if v < 0x10000 { return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex }
        return "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Python's `str.isprintable` for one character.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " { return true }
        if scalar.value < 0x7f { return scalar.value >= 0x20 }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default: return true
        }
    }

    /// markupsafe's `escape`.
    static func escapeHTML(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
