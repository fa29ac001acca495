/// Jinja's tests (`value is name`), as `jinja2.tests` defines them on Python values.
enum JinjaTestFunctions {
    static let supported: Set = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping",
        "iterable", "sequence", "callable", "even", "odd", "divisibleby", "lower", "upper", "in", "filter", "test",
        "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=",
    ]

    static let jinjaBuiltins: Set = supported.union(["sameas", "escaped"])

    static func apply(
        _ name: String, to value: JinjaValue, _ positional: [JinjaValue],
        _ keyword: [(String, JinjaValue)]
    ) throws -> Bool {
        let comparisons: [String: JinjaCompareOperator] = [
            "eq": .equal, "equalto": .equal, "==": .equal, "ne": .notEqual, "!=": .notEqual, "lt": .less,
            "lessthan": .less, "<": .less, "le": .lessOrEqual, "<=": .lessOrEqual, "gt": .greater,
            "greaterthan": .greater,
            ">": .greater, "ge": .greaterOrEqual, ">=": .greaterOrEqual,
        ]
        if let op = comparisons[name] {
            let other = try JinjaArguments.bind(name, ["other"], positional, keyword, required: 1)[0]!
            return try JinjaOperators.compare(op, value, other)
        }
        switch name {
        case "in":
            let sequence = try JinjaArguments.bind(name, ["seq"], positional, keyword, required: 1)[0]!
            return try sequence.contains(value)
        case "divisibleby":
            let divisor = try JinjaArguments.bind(name, ["num"], positional, keyword, required: 1)[0]!
            return try JinjaOperators.binary(.modulo, value, divisor).pythonEquals(.int(0))
        default:
            break
        }
        if name == "sameas" || name == "escaped" { throw JinjaFailure.unsupported("the '\(name)' test") }
        _ = try JinjaArguments.bind(name, [], positional, keyword)
        switch (name, value.storage) {
        case ("defined", _): return !value.isUndefined
        case ("undefined", _): return value.isUndefined
        case ("none", .none): return true
        case ("string", .string), ("string", .markup): return true
        case ("number", .bool), ("number", .int), ("number", .double): return true
        case ("integer", .int): return true
        case ("float", .double): return true
        case ("boolean", .bool): return true
        case ("true", .bool(let b)): return b
        case ("false", .bool(let b)): return !b
        case ("mapping", .dict): return true
        case ("iterable", .undefined), ("iterable", .list), ("iterable", .tuple), ("iterable", .dict),
            ("iterable", .string), ("iterable", .markup), ("iterable", .view), ("iterable", .loop):
            return true
        case ("sequence", .undefined), ("sequence", .list), ("sequence", .tuple), ("sequence", .dict),
            ("sequence", .string), ("sequence", .markup):
            return true
        case ("sequence", .view(let view)):
            if case .range = view.kind { return true }
            return false
        case ("callable", .macro), ("callable", .method), ("callable", .function): return true
        case ("even", _), ("odd", _):
            let remainder = try JinjaOperators.binary(.modulo, value, .int(2))
            return remainder.pythonEquals(.int(name == "even" ? 0 : 1))
        case ("lower", _), ("upper", _):
            return isCased(try value.pythonString(), lower: name == "lower")
        case ("filter", _): return value.stringValue.map(JinjaFilters.jinjaBuiltins.contains) ?? false
        case ("test", _): return value.stringValue.map(jinjaBuiltins.contains) ?? false
        default:
            if !jinjaBuiltins.contains(name) { throw JinjaFailure.render("No test named '\(name)' found.") }
            return false
        }
    }

    /// `str.islower()` / `str.isupper()`: some cased character, and none of the other case.
    private static func isCased(_ text: String, lower: Bool) -> Bool {
        var sawCased = false
        for c in text.unicodeScalars {
            let p = c.properties
            if p.isUppercase || p.generalCategory == .titlecaseLetter {
                if lower { return false }
                sawCased = true
            } else if p.isLowercase {
                if !lower { return false }
                sawCased = true
            }
        }
        return sawCased
    }
}
