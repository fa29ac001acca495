/// The filters chat templates use, each as `jinja2.filters` defines it, except `tojson`, which
/// is transformers' own: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)` with those parameters in that order (so `tojson(2)` sets `ensure_ascii`).
enum JinjaFilters {
    static let supported: Set = [
        "default", "d", "tojson", "length", "count", "trim", "string", "join", "first", "last", "lower", "upper",
        "list", "items", "safe", "replace",
    ]

    /// Every filter Jinja defines, to tell "not supported here" from "no such filter".
    static let jinjaBuiltins: Set = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace",
        "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title",
        "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    ]

    static func apply(_ name: String, to value: JinjaValue, _ positional: [JinjaValue],
                      _ keyword: [(String, JinjaValue)]) throws -> JinjaValue {
        switch name {
        case "default", "d":
            let args = try JinjaArguments.bind(name, ["default_value", "boolean"], positional, keyword)
            let useDefault = value.isUndefined || ((args[1]?.isTruthy ?? false) && !value.isTruthy)
            return useDefault ? args[0] ?? .string("") : value
        case "length", "count":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return .int(try length(of: value))
        case "tojson":
            let args = try JinjaArguments.bind(name, ["ensure_ascii", "indent", "separators", "sort_keys"], positional,
                                               keyword)
            return .string(try value.jsonDumps(ensureASCII: args[0]?.isTruthy ?? false, indent: try indent(args[1]),
                                               separators: try separators(args[2]), sortKeys: args[3]?.isTruthy ?? false))
        case "trim":
            let args = try JinjaArguments.bind(name, ["chars"], positional, keyword)
            let chars: String? = try args[0].flatMap { c in
                if c.isNone { return nil }
                guard let t = c.stringValue else { throw JinjaFailure.render("strip arg must be None or str") }
                return t
            }
            return try mapText(value) { PythonText.strip($0, chars: chars) }
        case "string":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            if case .markup = value.storage { return value }
            return .string(try value.pythonString())
        case "join":
            let args = try JinjaArguments.bind(name, ["d", "attribute"], positional, keyword)
            if let attribute = args[1], !attribute.isNone { throw JinjaFailure.unsupported("join(attribute=...)") }
            let separator = try args[0]?.pythonString() ?? ""
            return .string(try value.iterated().map { try $0.pythonString() }.joined(separator: separator))
        case "first":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return try value.iterated().first ?? .undefined("No first item, sequence was empty.")
        case "last":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            if case .view(let view) = value.storage, case .iterator(let kind) = view.kind {
                throw JinjaFailure.render("'\(kind)' object is not reversible")
            }
            return try value.iterated().last ?? .undefined("No last item, sequence was empty.")
        case "lower", "upper":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return try mapText(value) { name == "lower" ? $0.lowercased() : $0.uppercased() }
        case "list":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return .list(try value.iterated())
        case "items":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            let pairs: [JinjaValue]
            switch value.storage {
            case .undefined: pairs = []
            case .dict(let d): pairs = d.pairs.map { .tuple([.string($0.0), $0.1]) }
            default: throw JinjaFailure.render("Can only get item pairs from a mapping.")
            }
            return JinjaValue(.view(JinjaView(kind: .iterator("generator"), items: pairs)))
        case "safe":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return JinjaValue(.markup(try value.pythonString()))
        case "replace":
            let args = try JinjaArguments.bind(name, ["old", "new", "count"], positional, keyword, required: 2)
            var count = -1
            if let c = args[2], !c.isNone {
                guard case .int(let n)? = c.number else {
                    throw JinjaFailure.render("'\(c.typeName)' object cannot be interpreted as an integer")
                }
                count = n
            }
            return .string(PythonText.replace(try value.pythonString(), try args[0]!.pythonString(),
                                              try args[1]!.pythonString(), count: count))
        default:
            throw JinjaFailure.unsupported("the '\(name)' filter")
        }
    }

    /// Python's `len()`.
    static func length(of value: JinjaValue) throws -> Int {
        switch value.storage {
        case .undefined: return 0
        case .string(let s), .markup(let s): return s.unicodeScalars.count
        case .list(let items), .tuple(let items): return items.count
        case .dict(let d): return d.count
        case .view(let view):
            if case .iterator(let kind) = view.kind { throw JinjaFailure.render("object of type '\(kind)' has no len()") }
            return view.items.count
        case .loop(let loop): return loop.length
        default: throw JinjaFailure.render("object of type '\(value.typeName)' has no len()")
        }
    }

    /// Jinja's `soft_str(value)` then a string operation; a Markup string stays Markup.
    private static func mapText(_ value: JinjaValue, _ transform: (String) -> String) throws -> JinjaValue {
        if case .markup(let s) = value.storage { return JinjaValue(.markup(transform(s))) }
        return .string(transform(try value.pythonString()))
    }

    /// `json.dumps`'s `indent`: a number of spaces or a string.
    private static func indent(_ value: JinjaValue?) throws -> String? {
        guard let value, !value.isNone else { return nil }
        if let text = value.stringValue { return text }
        if case .int(let n)? = value.number { return String(repeating: " ", count: max(n, 0)) }
        throw JinjaFailure.render("can't multiply sequence by non-int of type '\(value.typeName)'")
    }

    private static func separators(_ value: JinjaValue?) throws -> (String, String)? {
        guard let value, !value.isNone else { return nil }
        switch value.storage {
        case .list(let items), .tuple(let items):
            if items.count == 2, let item = items[0].stringValue, let key = items[1].stringValue { return (item, key) }
        default: break
        }
        throw JinjaFailure.unsupported("tojson separators other than a pair of strings")
    }
}

/// Binding of call arguments to named parameters, with Python's errors.
enum JinjaArguments {
    /// The values of `names` in order, nil where not given. The first `required` are mandatory.
    static func bind(_ function: String, _ names: [String], _ positional: [JinjaValue], _ keyword: [(String, JinjaValue)],
                     required: Int = 0, positionalOnly: Bool = false) throws -> [JinjaValue?] {
        if positionalOnly && !keyword.isEmpty { throw JinjaFailure.render("\(function)() takes no keyword arguments") }
        guard positional.count <= names.count else {
            throw JinjaFailure.render("\(function)() takes at most \(names.count) argument(s) (\(positional.count) given)")
        }
        var values: [JinjaValue?] = positional.map { $0 } + Array(repeating: nil, count: names.count - positional.count)
        for (name, value) in keyword {
            guard let index = names.firstIndex(of: name) else {
                throw JinjaFailure.render("\(function)() got an unexpected keyword argument '\(name)'")
            }
            if values[index] != nil { throw JinjaFailure.render("\(function)() got multiple values for argument '\(name)'") }
            values[index] = value
        }
        for index in 0..<required where values[index] == nil {
            throw JinjaFailure.render("\(function)() missing required argument '\(names[index])'")
        }
        return values
    }
}
