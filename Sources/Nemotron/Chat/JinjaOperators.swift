import Foundation

/// Python's arithmetic and comparison operators on template values: `int` stays `int` until a
/// `float` or `/` enters, `%` and `//` round toward negative infinity, `+` concatenates strings,
/// lists and tuples but never a string and a number, and `Markup + str` escapes the `str`.
/// Integers are 64-bit here; an overflow that Python's big integers would absorb is an error.
enum JinjaOperators {
    static func binary(_ op: JinjaBinaryOperator, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if case .undefined(let message) = a.storage { throw JinjaFailure.render(message) }
        if case .undefined(let message) = b.storage { throw JinjaFailure.render(message) }
        if let x = a.number, let y = b.number { return try arithmetic(op, x, y) }
        switch (op, a.storage, b.storage) {
        case (.add, .string(let x), .string(let y)): return .string(x + y)
        case (.add, .markup(let x), .string(let y)): return JinjaValue(.markup(x + PythonFormat.escapeHTML(y)))
        case (.add, .string(let x), .markup(let y)): return JinjaValue(.markup(PythonFormat.escapeHTML(x) + y))
        case (.add, .markup(let x), .markup(let y)): return JinjaValue(.markup(x + y))
        case (.add, .list(let x), .list(let y)): return .list(x + y)
        case (.add, .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case (.add, .string, _), (.add, .list, _), (.add, .tuple, _):
            let kind = a.typeName
            throw JinjaFailure.render("can only concatenate \(kind) (not \"\(b.typeName)\") to \(kind)")
        case (.multiply, _, _):
            if let repeated = try repeated(a, b) ?? repeated(b, a) { return repeated }
        case (.modulo, .string, _), (.modulo, .markup, _):
            throw JinjaFailure.unsupported("printf-style '%' string formatting")
        default: break
        }
        throw JinjaFailure.render("unsupported operand type(s) for \(op.rawValue): '\(a.typeName)' and '\(b.typeName)'")
    }

    /// `sequence * count` for strings, lists and tuples.
    private static func repeated(_ sequence: JinjaValue, _ count: JinjaValue) throws -> JinjaValue? {
        guard case .int(let n)? = count.number else { return nil }
        let times = max(n, 0)
        switch sequence.storage {
        case .string(let s): return .string(String(repeating: s, count: times))
        case .markup(let s): return JinjaValue(.markup(String(repeating: s, count: times)))
        case .list(let items): return .list(Array(repeating: items, count: times).flatMap { $0 })
        case .tuple(let items): return .tuple(Array(repeating: items, count: times).flatMap { $0 })
        default: return nil
        }
    }

    private static func overflow(_ op: JinjaBinaryOperator) -> JinjaFailure {
        .unsupported("integer results beyond 64 bits (in '\(op.rawValue)')")
    }

    private static func arithmetic(_ op: JinjaBinaryOperator, _ x: JinjaValue.Number, _ y: JinjaValue.Number) throws
        -> JinjaValue
    {
        if case .int(let a) = x, case .int(let b) = y {
            switch op {
            case .add, .subtract, .multiply:
                let (result, overflowed) =
                    op == .add
                    ? a.addingReportingOverflow(b)
                    : op == .subtract ? a.subtractingReportingOverflow(b) : a.multipliedReportingOverflow(by: b)
                if overflowed { throw overflow(op) }
                return .int(result)
            case .divide:
                if b == 0 { throw JinjaFailure.render("division by zero") }
                return .double(Double(a) / Double(b))
            case .floorDivide, .modulo:
                if b == 0 { throw JinjaFailure.render("integer division or modulo by zero") }
                if a == Int.min && b == -1 { throw overflow(op) }
                var quotient = a / b
                var remainder = a % b
                if remainder != 0 && (remainder < 0) != (b < 0) {
                    quotient -= 1
                    remainder += b
                }
                return .int(op == .floorDivide ? quotient : remainder)
            case .power:
                if b < 0 {
                    if a == 0 { throw JinjaFailure.render("0.0 cannot be raised to a negative power") }
                    return .double(Foundation.pow(Double(a), Double(b)))
                }
                var result = 1
                var base = a
                var exponent = b
                while exponent > 0 {
                    if exponent & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow(op) }
                        result = r
                    }
                    exponent >>= 1
                    if exponent > 0 {
                        let (s, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow(op) }
                        base = s
                    }
                }
                return .int(result)
            }
        }
        let a = double(x)
        let b = double(y)
        switch op {
        case .add: return .double(a + b)
        case .subtract: return .double(a - b)
        case .multiply: return .double(a * b)
        case .divide:
            if b == 0 { throw JinjaFailure.render("float division by zero") }
            return .double(a / b)
        case .floorDivide, .modulo:
            if b == 0 { throw JinjaFailure.render("float modulo") }
            let (quotient, remainder) = floatDivMod(a, b)
            return .double(op == .floorDivide ? quotient : remainder)
        case .power:
            if a == 0 && b < 0 { throw JinjaFailure.render("0.0 cannot be raised to a negative power") }
            if a < 0 && b != b.rounded() { throw JinjaFailure.unsupported("complex results of '**'") }
            return .double(Foundation.pow(a, b))
        }
    }

    private static func double(_ n: JinjaValue.Number) -> Double {
        switch n {
        case .int(let i): return Double(i)
        case .double(let d): return d
        }
    }

    /// CPython's `float_divmod`.
    private static func floatDivMod(_ vx: Double, _ wx: Double) -> (Double, Double) {
        var mod = fmod(vx, wx)
        var div = (vx - mod) / wx
        if mod != 0 {
            if (wx < 0) != (mod < 0) {
                mod += wx
                div -= 1
            }
        } else {
            mod = Double(signOf: wx, magnitudeOf: 0)
        }
        var floorDiv: Double
        if div != 0 {
            floorDiv = div.rounded(.down)
            if div - floorDiv > 0.5 { floorDiv += 1 }
        } else {
            floorDiv = Double(signOf: vx / wx, magnitudeOf: 0)
        }
        return (floorDiv, mod)
    }

    static func negate(_ value: JinjaValue) throws -> JinjaValue {
        if case .undefined(let message) = value.storage { throw JinjaFailure.render(message) }
        switch value.number {
        case .int(let i)?:
            if i == Int.min { throw JinjaFailure.unsupported("integer results beyond 64 bits (in unary '-')") }
            return .int(-i)
        case .double(let d)?: return .double(-d)
        case nil: throw JinjaFailure.render("bad operand type for unary -: '\(value.typeName)'")
        }
    }

    static func plus(_ value: JinjaValue) throws -> JinjaValue {
        if case .undefined(let message) = value.storage { throw JinjaFailure.render(message) }
        switch value.number {
        case .int(let i)?: return .int(i)
        case .double(let d)?: return .double(d)
        case nil: throw JinjaFailure.render("bad operand type for unary +: '\(value.typeName)'")
        }
    }

    static func compare(_ op: JinjaCompareOperator, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case .equal: return a.pythonEquals(b)
        case .notEqual: return !a.pythonEquals(b)
        case .isIn: return try b.contains(a)
        case .notIn: return !(try b.contains(a))
        case .less: return try a.pythonCompare(b, operator: op.rawValue) == .orderedAscending
        case .lessOrEqual:
            return try [.orderedAscending, .orderedSame].contains(a.pythonCompare(b, operator: op.rawValue))
        case .greater: return try a.pythonCompare(b, operator: op.rawValue) == .orderedDescending
        case .greaterOrEqual:
            return try [.orderedDescending, .orderedSame].contains(a.pythonCompare(b, operator: op.rawValue))
        }
    }
}
