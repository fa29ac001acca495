/// The filters chat templates use, each as `jinja2.filters` defines it, except `tojson`, which
/// is transformers' own: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)` with those parameters in that order (so `tojson(2)` sets `ensure_ascii`).
enum JinjaFilters {
    static let supported: Set = [
        "default", "d", "tojson", "length", "count", "trim", "string", "join", "first", "last", "lower", "upper",
        "list", "items", "safe", "replace", "capitalize", "title", "reverse", "dictsort", "map", "select", "reject",
        "selectattr", "rejectattr", "int", "float", "abs",
    ]

    /// Every filter Jinja defines, to tell "not supported here" from "no such filter".
    static let jinjaBuiltins: Set = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace",
        "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title",
        "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    ]

    static func apply(
        _ name: String, to value: JinjaValue, _ positional: [JinjaValue],
        _ keyword: [(String, JinjaValue)]
    ) throws -> JinjaValue {
        switch name {
        case "default", "d":
            let args = try JinjaArguments.bind(name, ["default_value", "boolean"], positional, keyword)
            let useDefault = value.isUndefined || ((args[1]?.isTruthy ?? false) && !value.isTruthy)
            return useDefault ? args[0] ?? .string("") : value
        case "length", "count":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return .int(try length(of: value))
        case "tojson":
            let args = try JinjaArguments.bind(
                name, ["ensure_ascii", "indent", "separators", "sort_keys"], positional,
                keyword)
            return .string(
                try value.jsonDumps(
                    ensureASCII: args[0]?.isTruthy ?? false, indent: try indent(args[1]),
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
            return try mapText(value) { name == "lower" ? PythonText.lower($0) : PythonText.upper($0) }
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
            return .string(
                PythonText.replace(
                    try value.pythonString(), try args[0]!.pythonString(),
                    try args[1]!.pythonString(), count: count))
        default:
            return try applyMore(name, to: value, positional, keyword)
        }
    }

    private static func applyMore(
        _ name: String, to value: JinjaValue, _ positional: [JinjaValue],
        _ keyword: [(String, JinjaValue)]
    ) throws -> JinjaValue {
        switch name {
        case "capitalize":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return try mapText(value) { text in
                guard let first = text.unicodeScalars.first else { return text }
                return first.properties.titlecaseMapping
                    + PythonText.lower(PythonText.string(text.unicodeScalars.dropFirst()))
            }
        case "title":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return try mapText(value, titleCased)
        case "reverse":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            switch value.storage {
            case .string(let s), .markup(let s): return .string(PythonText.string(s.unicodeScalars.reversed()))
            case .list, .tuple, .dict, .undefined, .view:
                if case .view(let view) = value.storage, case .iterator = view.kind {
                    return .list(view.items.reversed())  // not reversible: Jinja copies it into a list
                }
                return JinjaValue(.view(JinjaView(kind: .iterator("reversed"), items: try value.iterated().reversed())))
            default: throw JinjaFailure.render("argument must be iterable")
            }
        case "dictsort":
            let args = try JinjaArguments.bind(name, ["case_sensitive", "by", "reverse"], positional, keyword)
            guard case .dict(let d) = value.storage else {
                throw JinjaFailure.render("'\(value.typeName)' object has no attribute 'items'")
            }
            let byValue: Bool
            switch args[1]?.stringValue ?? "key" {
            case "key": byValue = false
            case "value": byValue = true
            default: throw JinjaFailure.render("You can only sort by either \"key\" or \"value\"")
            }
            let caseSensitive = args[0]?.isTruthy ?? false
            let pairs = d.pairs.map { (key: JinjaValue.string($0.0), value: $0.1) }
            let sorted = try stableSorted(pairs, descending: args[2]?.isTruthy ?? false) { pair in
                let v = byValue ? pair.value : pair.key
                if !caseSensitive, let text = v.stringValue { return .string(PythonText.lower(text)) }
                return v
            }
            return .list(sorted.map { .tuple([$0.key, $0.value]) })
        case "map":
            let items = value.isTruthy ? try value.iterated() : []  // Jinja: `if value:` before iterating
            let transform: (JinjaValue) throws -> JinjaValue
            if positional.isEmpty, let attribute = keyword.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = keyword.first(where: { $0.0 == "default" })?.1
                if let extra = keyword.first(where: { $0.0 != "attribute" && $0.0 != "default" }) {
                    throw JinjaFailure.render("Unexpected keyword argument '\(extra.0)'")
                }
                transform = { try attributePath(attribute, of: $0, default: fallback) }
            } else {
                guard let filter = positional.first?.stringValue else {
                    throw JinjaFailure.render("map requires a filter argument")
                }
                let rest = Array(positional.dropFirst())
                transform = { try apply(filter, to: $0, rest, keyword) }
            }
            return generator(try items.map(transform))
        case "select", "reject", "selectattr", "rejectattr":
            let items = value.isTruthy ? try value.iterated() : []
            let byAttribute = name.hasSuffix("attr")
            if byAttribute && positional.isEmpty { throw JinjaFailure.render("Missing parameter for attribute name") }
            let offset = byAttribute ? 1 : 0
            let test = positional.count > offset ? positional[offset].stringValue : nil
            if positional.count > offset && test == nil { throw JinjaFailure.render("test name must be a string") }
            let rest = Array(positional.dropFirst(offset + 1))
            let keep = name.hasPrefix("select")
            let picked = try items.filter { item in
                let subject = byAttribute ? try attributePath(positional[0], of: item, default: nil) : item
                let passed =
                    try test.map { try JinjaTestFunctions.apply($0, to: subject, rest, keyword) } ?? subject.isTruthy
                return passed == keep
            }
            return generator(picked)
        case "int":
            let args = try JinjaArguments.bind(name, ["default", "base"], positional, keyword)
            return try integer(value, default: args[0] ?? .int(0), base: args[1])
        case "float":
            let args = try JinjaArguments.bind(name, ["default"], positional, keyword)
            if case .undefined(let message) = value.storage { throw JinjaFailure.render(message) }
            if case .double = value.storage { return value }
            if let n = value.number, case .int(let i) = n { return .double(Double(i)) }
            if let text = value.stringValue, let d = pythonFloat(text) { return .double(d) }
            return args[0] ?? .double(0)
        case "abs":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            switch value.number {
            case .int(let i)?:
                if i == Int.min { throw JinjaFailure.unsupported("integer results beyond 64 bits (in abs)") }
                return .int(abs(i))
            case .double(let d)?: return .double(abs(d))
            case nil: throw JinjaFailure.render("bad operand type for abs(): '\(value.typeName)'")
            }
        default:
            if jinjaBuiltins.contains(name) { throw JinjaFailure.unsupported("the '\(name)' filter") }
            throw JinjaFailure.render("No filter named '\(name)' found.")
        }
    }

    /// A one-shot generator, as `map` and `select` return (it prints as an address in Python).
    private static func generator(_ items: [JinjaValue]) -> JinjaValue {
        JinjaValue(.view(JinjaView(kind: .iterator("generator"), items: items)))
    }

    /// Jinja's `make_attrgetter`: `a.b.0` looks up each part as an item (digits as integers).
    static func attributePath(_ attribute: JinjaValue, of item: JinjaValue, default fallback: JinjaValue?) throws
        -> JinjaValue
    {
        let parts: [JinjaValue]
        if let path = attribute.stringValue {
            parts = path.split(separator: ".", omittingEmptySubsequences: false).map { part in
                part.allSatisfy(\.isASCII) && !part.isEmpty && part.allSatisfy(\.isNumber)
                    ? .int(Int(part)!) : .string(String(part))
            }
        } else {
            parts = [attribute]
        }
        var current = item
        for part in parts {
            current = try current.item(part)
            if let fallback, current.isUndefined { current = fallback }
        }
        return current
    }

    /// Python's `sorted(items, key=key, reverse=descending)`: stable in both directions.
    private static func stableSorted<T>(_ items: [T], descending: Bool, key: (T) -> JinjaValue) throws -> [T] {
        let keyed = items.enumerated().map { (index: $0.offset, key: key($0.element), item: $0.element) }
        var failure: Error?
        let sorted = keyed.sorted { a, b in
            do {
                let order = try a.key.pythonCompare(b.key, operator: "<")
                if order == .orderedSame || order == nil { return a.index < b.index }
                return (order == .orderedAscending) != descending
            } catch {
                failure = failure ?? error
                return a.index < b.index
            }
        }
        if let failure { throw failure }
        return sorted.map(\.item)
    }

    /// Jinja's `int` filter: `int(value)` (strings in `base`), else `int(float(value))`, else `default`.
    private static func integer(_ value: JinjaValue, default fallback: JinjaValue, base: JinjaValue?) throws
        -> JinjaValue
    {
        if case .undefined(let message) = value.storage { throw JinjaFailure.render(message) }
        switch value.storage {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int: return value
        case .double(let d):
            guard d.isFinite else {
                throw JinjaFailure.render("cannot convert float \(PythonFormat.float(d)) to integer")
            }
            guard let i = Int(exactly: d.rounded(.towardZero)) else {
                throw JinjaFailure.unsupported("integers beyond 64 bits")
            }
            return .int(i)
        default: break
        }
        guard let text = value.stringValue else { return fallback }
        var radix = 10
        if let base {
            guard case .int(let b)? = base.number else {
                throw JinjaFailure.render("'\(base.typeName)' object cannot be interpreted as an integer")
            }
            radix = b
        }
        if let i = pythonInt(text, radix: radix) { return .int(i) }
        if let d = pythonFloat(text), d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) { return .int(i) }
        return fallback
    }

    /// Python's `int(text, base)`: optional sign, a `0x`/`0o`/`0b` prefix matching the base (any
    /// of them for base 0), single underscores between digits, surrounding whitespace.
    private static func pythonInt(_ text: String, radix: Int) -> Int? {
        var body = Substring(PythonText.strip(text, chars: nil))
        var negative = false
        if let sign = body.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        var base = radix
        let prefixes: [(String, Int)] = [("0x", 16), ("0o", 8), ("0b", 2)]
        if let (prefix, prefixBase) = prefixes.first(where: { body.lowercased().hasPrefix($0.0) }),
            base == 0 || base == prefixBase
        {
            body = body.dropFirst(prefix.count)
            base = prefixBase
            if body.first == "_" { body = body.dropFirst() }
        } else if base == 0 {
            base = 10
            if body.count > 1, body.first == "0", body.contains(where: { $0 != "0" && $0 != "_" }) { return nil }
        }
        guard (2...36).contains(base), !body.isEmpty, body.first != "_", body.last != "_", !body.contains("__") else {
            return nil
        }
        guard let magnitude = Int(body.replacingOccurrences(of: "_", with: ""), radix: base),
            !body.hasPrefix("+"), !body.hasPrefix("-")
        else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// Python's `float(text)` for plain decimal forms, infinities and NaN (nil where Python fails).
    private static func pythonFloat(_ text: String) -> Double? {
        let trimmed = PythonText.strip(text, chars: nil)
        let lowered = trimmed.lowercased()
        let sign: Double = lowered.hasPrefix("-") ? -1 : 1
        let unsigned = lowered.hasPrefix("-") || lowered.hasPrefix("+") ? String(lowered.dropFirst()) : lowered
        if unsigned == "inf" || unsigned == "infinity" { return sign * .infinity }
        if unsigned == "nan" { return .nan }
        guard !unsigned.isEmpty, unsigned.allSatisfy({ "0123456789.e+-_".contains($0) }),
            !unsigned.hasPrefix("_"), !unsigned.contains("__")
        else { return nil }
        return Double(trimmed.replacingOccurrences(of: "_", with: ""))
    }

    /// Jinja's `title`: the text is split into runs of `-`, whitespace, `(`, `{`, `[`, `<` and
    /// runs of anything else; each run gets its first character upper-cased and the rest lower-cased.
    private static func titleCased(_ text: String) -> String {
        func isBreak(_ c: Unicode.Scalar) -> Bool {
            c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || PythonText.isSpace(c)
        }
        var out = ""
        var run: [Unicode.Scalar] = []
        func flush() {
            guard let first = run.first else { return }
            out += PythonText.upper(String(first)) + PythonText.lower(PythonText.string(run.dropFirst()))
            run = []
        }
        for c in text.unicodeScalars {
            if let last = run.last, isBreak(last) != isBreak(c) { flush() }
            run.append(c)
        }
        flush()
        return out
    }

    /// Python's `len()`.
    static func length(of value: JinjaValue) throws -> Int {
        switch value.storage {
        case .undefined: return 0
        case .string(let s), .markup(let s): return s.unicodeScalars.count
        case .list(let items), .tuple(let items): return items.count
        case .dict(let d): return d.count
        case .view(let view):
            if case .iterator(let kind) = view.kind {
                throw JinjaFailure.render("object of type '\(kind)' has no len()")
            }
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
    static func bind(
        _ function: String, _ names: [String], _ positional: [JinjaValue], _ keyword: [(String, JinjaValue)],
        required: Int = 0, positionalOnly: Bool = false
    ) throws -> [JinjaValue?] {
        if positionalOnly && !keyword.isEmpty { throw JinjaFailure.render("\(function)() takes no keyword arguments") }
        guard positional.count <= names.count else {
            throw JinjaFailure.render(
                "\(function)() takes at most \(names.count) argument(s) (\(positional.count) given)")
        }
        var values: [JinjaValue?] = positional.map { $0 } + Array(repeating: nil, count: names.count - positional.count)
        for (name, value) in keyword {
            guard let index = names.firstIndex(of: name) else {
                throw JinjaFailure.render("\(function)() got an unexpected keyword argument '\(name)'")
            }
            if values[index] != nil {
                throw JinjaFailure.render("\(function)() got multiple values for argument '\(name)'")
            }
            values[index] = value
        }
        for index in 0..<required where values[index] == nil {
            throw JinjaFailure.render("\(function)() missing required argument '\(names[index])'")
        }
        return values
    }
}
