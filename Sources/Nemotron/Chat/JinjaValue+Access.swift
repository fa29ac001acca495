/// Attribute and item access, slicing, iteration and methods, as Jinja's sandbox does them:
/// `a.b` tries the attribute then the key, `a['b']` the key then the attribute; a missing one is
/// undefined, but any access on an undefined value fails. Methods that would mutate (`append`,
/// `update`, `pop`) are unsafe and undefined, as in `ImmutableSandboxedEnvironment`.
extension JinjaValue {
    private static let strMethods: Set = [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
        "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
        "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans",
        "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
        "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
    ]
    private static let supportedStrMethods: Set = [
        "strip", "lstrip", "rstrip", "replace", "split", "rsplit", "startswith", "endswith", "upper", "lower",
        "find", "count", "join", "removeprefix", "removesuffix",
    ]
    private static let dictMethods: Set = [
        "clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem",
        "setdefault", "update", "values",
    ]
    private static let supportedDictMethods: Set = ["get", "items", "keys", "values"]
    private static let listMethods: Set = [
        "append", "clear", "copy", "count", "extend", "index", "insert", "pop",
        "remove", "reverse", "sort",
    ]
    /// What `ImmutableSandboxedEnvironment` refuses on mutable mappings and sequences.
    private static let mutatingMethods: Set = [
        "clear", "pop", "popitem", "setdefault", "update", "append", "extend",
        "insert", "remove", "reverse", "sort",
    ]
    private static let numberAttributes: Set = [
        "as_integer_ratio", "bit_count", "bit_length", "conjugate", "denominator", "from_bytes", "imag", "numerator",
        "real", "to_bytes", "fromhex", "hex", "is_integer",
    ]

    // MARK: - Attributes and items

    /// `value.name`
    func attribute(_ name: String) throws -> JinjaValue {
        if case .undefined(let message) = storage { throw JinjaFailure.render(message) }
        if name.hasPrefix("__") { throw JinjaFailure.unsupported("the private attribute '\(name)'") }
        let missing = JinjaValue.undefined("'\(objectDescription)' has no attribute '\(name)'")
        switch storage {
        case .dict(let d):
            if Self.dictMethods.contains(name) {
                return try method(name, known: Self.dictMethods, supported: Self.supportedDictMethods)
            }
            return d[name] ?? missing
        case .string, .markup:
            return Self.strMethods.contains(name)
                ? try method(name, known: Self.strMethods, supported: Self.supportedStrMethods) : missing
        case .list:
            return Self.listMethods.contains(name) ? try method(name, known: Self.listMethods, supported: []) : missing
        case .tuple:
            if name == "count" || name == "index" { throw JinjaFailure.unsupported("the tuple method '\(name)'") }
            return missing
        case .bool, .int, .double:
            if Self.numberAttributes.contains(name) { throw JinjaFailure.unsupported("the number attribute '\(name)'") }
            return missing
        case .namespace(let ns):
            return ns.attributes[name] ?? missing
        case .loop(let loop):
            return try loop.attribute(name, receiver: self) ?? missing
        case .view(let view):
            if case .range(let start, let stop, let step) = view.kind {
                switch name {
                case "start": return .int(start)
                case "stop": return .int(stop)
                case "step": return .int(step)
                case "count", "index": throw JinjaFailure.unsupported("the range method '\(name)'")
                default: return missing
                }
            }
            if name == "mapping" { throw JinjaFailure.unsupported("the 'mapping' attribute of dict views") }
            return missing
        case .macro, .method, .function:
            throw JinjaFailure.unsupported("attributes of a \(typeName)")
        default:
            return missing
        }
    }

    private func method(_ name: String, known: Set<String>, supported: Set<String>) throws -> JinjaValue {
        if Self.mutatingMethods.contains(name) {
            return .undefined("access to attribute '\(name)' of '\(typeName)' object is unsafe.")
        }
        guard supported.contains(name) else { throw JinjaFailure.unsupported("the \(typeName) method '\(name)'") }
        if case .markup = storage {
            throw JinjaFailure.unsupported("methods of Markup strings (the 'safe' filter's result)")
        }
        return JinjaValue(.method(receiver: self, name: name))
    }

    /// Jinja's `object_type_repr`, used in undefined messages.
    private var objectDescription: String {
        switch storage {
        case .none: return "None"
        default: return "\(typeName) object"
        }
    }

    /// `value[key]` (not a slice).
    func item(_ key: JinjaValue) throws -> JinjaValue {
        if case .undefined(let message) = storage { throw JinjaFailure.render(message) }
        let missing = JinjaValue.undefined("\(objectDescription) has no element \((try? key.pythonRepr()) ?? "?")")
        switch storage {
        case .list(let items), .tuple(let items):
            if case .int(let i)? = key.number { return Self.element(items, i) ?? missing }
        case .string(let s), .markup(let s):
            if case .int(let i)? = key.number {
                let scalars = PythonText.scalars(s)
                guard let index = Self.normalizedIndex(i, count: scalars.count) else { return missing }
                return .string(String(scalars[index]))
            }
        case .dict(let d):
            if let name = key.stringValue, let value = d[name] { return value }
        case .view(let view):
            if case .range = view.kind, case .int(let i)? = key.number { return Self.element(view.items, i) ?? missing }
        default:
            break
        }
        // The key failed: a string key falls back to the attribute of that name.
        if let name = key.stringValue { return try attribute(name) }
        return missing
    }

    private static func normalizedIndex(_ i: Int, count: Int) -> Int? {
        let index = i < 0 ? i + count : i
        return index >= 0 && index < count ? index : nil
    }

    private static func element(_ items: [JinjaValue], _ i: Int) -> JinjaValue? {
        normalizedIndex(i, count: items.count).map { items[$0] }
    }

    /// `value[start:stop:step]`
    func sliced(_ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        if case .undefined(let message) = storage { throw JinjaFailure.render(message) }
        func bound(_ v: JinjaValue?) -> Int?? {
            guard let v, !v.isNone else { return .some(nil) }
            if case .int(let i)? = v.number { return .some(i) }
            return nil
        }
        guard let low = bound(start), let high = bound(stop), let stride = bound(step) else {
            return .undefined("slice indices must be integers or None")
        }
        let by = stride ?? 1
        if by == 0 { throw JinjaFailure.render("slice step cannot be zero") }
        switch storage {
        case .list(let items):
            return .list(
                PythonText.sliceIndices(count: items.count, start: low, stop: high, step: by).map { items[$0] })
        case .tuple(let items):
            return .tuple(
                PythonText.sliceIndices(count: items.count, start: low, stop: high, step: by).map { items[$0] })
        case .string(let s), .markup(let s):
            let scalars = PythonText.scalars(s)
            let picked = PythonText.sliceIndices(count: scalars.count, start: low, stop: high, step: by).map {
                scalars[$0]
            }
            return .string(PythonText.string(picked))
        case .view(let view):
            if case .range = view.kind { throw JinjaFailure.unsupported("slicing a range") }
            return .undefined("\(objectDescription) is not subscriptable")
        default:
            return .undefined("\(objectDescription) is not subscriptable")
        }
    }

    // MARK: - Iteration and membership

    /// The items a `for` loop (or `list()`) sees: list items, dict keys, string characters.
    func iterated() throws -> [JinjaValue] {
        switch storage {
        case .undefined: return []
        case .list(let items), .tuple(let items): return items
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s), .markup(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .view(let view): return view.items
        default: throw JinjaFailure.render("'\(typeName)' object is not iterable")
        }
    }

    /// Python's `item in self`.
    func contains(_ item: JinjaValue) throws -> Bool {
        switch storage {
        case .undefined: return false
        case .string(let s), .markup(let s):
            guard let needle = item.stringValue else {
                throw JinjaFailure.render("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PythonText.contains(s, needle)
        case .list(let items), .tuple(let items): return items.contains { $0.pythonEquals(item) }
        case .dict(let d):
            if !item.isHashable { throw JinjaFailure.render("unhashable type: '\(item.typeName)'") }
            return item.stringValue.map { d[$0] != nil } ?? false
        case .view(let view): return view.items.contains { $0.pythonEquals(item) }
        default: throw JinjaFailure.render("argument of type '\(typeName)' is not iterable")
        }
    }

    /// Whether Python can hash the value (dict keys, `in` on a dict): not lists, dicts or set-like views.
    var isHashable: Bool {
        switch storage {
        case .list, .dict: return false
        case .tuple(let items): return items.allSatisfy(\.isHashable)
        case .view(let view): return view.kind != .dictKeys && view.kind != .dictItems
        default: return true
        }
    }

    // MARK: - Methods

    func callMethod(_ name: String, _ positional: [JinjaValue], _ keyword: [(String, JinjaValue)]) throws -> JinjaValue
    {
        switch storage {
        case .string(let s): return try Self.stringMethod(s, name, positional, keyword)
        case .dict(let d): return try Self.dictMethod(d, name, positional, keyword)
        case .loop(let loop):
            guard name == "cycle", keyword.isEmpty else { throw JinjaFailure.unsupported("loop.\(name)") }
            guard !positional.isEmpty else { throw JinjaFailure.render("no items for cycling given") }
            return positional[loop.index0 % positional.count]
        default: throw JinjaFailure.unsupported("the \(typeName) method '\(name)'")
        }
    }

    private static func dictMethod(
        _ d: JinjaDict, _ name: String, _ positional: [JinjaValue],
        _ keyword: [(String, JinjaValue)]
    ) throws -> JinjaValue {
        guard keyword.isEmpty else { throw JinjaFailure.render("dict.\(name)() takes no keyword arguments") }
        switch name {
        case "get":
            guard (1...2).contains(positional.count) else {
                throw JinjaFailure.render("get expected at most 2 arguments, got \(positional.count)")
            }
            let fallback = positional.count > 1 ? positional[1] : .null
            if !positional[0].isHashable { throw JinjaFailure.render("unhashable type: '\(positional[0].typeName)'") }
            return positional[0].stringValue.flatMap { d[$0] } ?? fallback
        default:
            guard positional.isEmpty else {
                throw JinjaFailure.render("dict.\(name)() takes no arguments (\(positional.count) given)")
            }
            switch name {
            case "items":
                return JinjaValue(
                    .view(JinjaView(kind: .dictItems, items: d.pairs.map { .tuple([.string($0.0), $0.1]) })))
            case "keys": return JinjaValue(.view(JinjaView(kind: .dictKeys, items: d.keys.map { .string($0) })))
            default: return JinjaValue(.view(JinjaView(kind: .dictValues, items: d.values)))
            }
        }
    }

    private static func stringMethod(
        _ s: String, _ name: String, _ positional: [JinjaValue],
        _ keyword: [(String, JinjaValue)]
    ) throws -> JinjaValue {
        func text(_ v: JinjaValue?, _ what: String) throws -> String? {
            guard let v, !v.isNone else { return nil }
            guard let t = v.stringValue else {
                throw JinjaFailure.render("\(what) must be str or None, not \(v.typeName)")
            }
            return t
        }
        func integer(_ v: JinjaValue?, _ fallback: Int) throws -> Int {
            guard let v else { return fallback }
            guard case .int(let i)? = v.number else {
                throw JinjaFailure.render("'\(v.typeName)' object cannot be interpreted as an integer")
            }
            return i
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            let args = try JinjaArguments.bind(name, ["chars"], positional, keyword, positionalOnly: true)
            let chars = try text(args[0], "\(name) arg")
            return .string(PythonText.strip(s, chars: chars, leading: name != "rstrip", trailing: name != "lstrip"))
        case "upper", "lower":
            _ = try JinjaArguments.bind(name, [], positional, keyword)
            return .string(name == "upper" ? PythonText.upper(s) : PythonText.lower(s))
        case "replace":
            let args = try JinjaArguments.bind(
                name, ["old", "new", "count"], positional, keyword, required: 2,
                positionalOnly: true)
            guard let old = args[0]?.stringValue, let new = args[1]?.stringValue else {
                throw JinjaFailure.render("replace() argument must be str")
            }
            return .string(PythonText.replace(s, old, new, count: try integer(args[2], -1)))
        case "split", "rsplit":
            let args = try JinjaArguments.bind(name, ["sep", "maxsplit"], positional, keyword)
            let separator = try text(args[0], "sep")
            if separator?.isEmpty == true { throw JinjaFailure.render("empty separator") }
            let maxSplit = try integer(args[1], -1)
            let parts =
                name == "split"
                ? PythonText.split(s, separator: separator, maxSplit: maxSplit)
                : PythonText.rsplit(s, separator: separator, maxSplit: maxSplit)
            return .list(parts.map { .string($0) })
        case "startswith", "endswith":
            let args = try JinjaArguments.bind(
                name, ["prefix", "start", "end"], positional, keyword, required: 1,
                positionalOnly: true)
            let candidates: [String]
            switch args[0]!.storage {
            case .string(let p), .markup(let p): candidates = [p]
            case .tuple(let items):
                candidates = try items.map {
                    guard let p = $0.stringValue else {
                        throw JinjaFailure.render("tuple for \(name) must only contain str, not \($0.typeName)")
                    }
                    return p
                }
            default:
                throw JinjaFailure.render("\(name) first arg must be str or a tuple of str, not \(args[0]!.typeName)")
            }
            let scalars = PythonText.scalars(s)
            let range = PythonText.sliceIndices(
                count: scalars.count, start: try args[1].map { try integer($0, 0) },
                stop: try args[2].map { try integer($0, 0) }, step: 1)
            let window = range.map { scalars[$0] }
            if let first = args[1], case .int(let start)? = first.number, start > scalars.count { return .bool(false) }
            return .bool(
                candidates.contains { candidate in
                    let c = PythonText.scalars(candidate)
                    return name == "startswith" ? PythonText.hasPrefix(window, c) : PythonText.hasSuffix(window, c)
                })
        case "find", "count":
            let args = try JinjaArguments.bind(name, ["sub"], positional, keyword, required: 1, positionalOnly: true)
            guard let sub = args[0]?.stringValue else {
                throw JinjaFailure.render("must be str, not \(args[0]!.typeName)")
            }
            let haystack = PythonText.scalars(s)
            let needle = PythonText.scalars(sub)
            if name == "find" { return .int(PythonText.find(needle, in: haystack) ?? -1) }
            return .int(PythonText.count(needle, in: haystack))
        case "join":
            let args = try JinjaArguments.bind(
                name, ["iterable"], positional, keyword, required: 1, positionalOnly: true)
            let items = try args[0]!.iterated()
            let parts = try items.enumerated().map { index, item in
                guard let t = item.stringValue else {
                    throw JinjaFailure.render("sequence item \(index): expected str instance, \(item.typeName) found")
                }
                return t
            }
            return .string(parts.joined(separator: s))
        case "removeprefix", "removesuffix":
            let args = try JinjaArguments.bind(name, ["affix"], positional, keyword, required: 1, positionalOnly: true)
            guard let affix = args[0]?.stringValue else { throw JinjaFailure.render("\(name)() argument must be str") }
            let scalars = PythonText.scalars(s)
            let a = PythonText.scalars(affix)
            if name == "removeprefix" {
                return .string(PythonText.hasPrefix(scalars, a) ? PythonText.string(scalars.dropFirst(a.count)) : s)
            }
            return .string(
                PythonText.hasSuffix(scalars, a) && !a.isEmpty ? PythonText.string(scalars.dropLast(a.count)) : s)
        default:
            throw JinjaFailure.unsupported("the str method '\(name)'")
        }
    }
}

extension JinjaLoop {
    /// `loop.<name>`, or nil for names the loop does not have.
    func attribute(_ name: String, receiver: JinjaValue) throws -> JinjaValue? {
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(length - index0)
        case "revindex0": return .int(length - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem": return index0 > 0 ? items[index0 - 1] : .undefined("there is no previous item")
        case "nextitem": return index0 + 1 < length ? items[index0 + 1] : .undefined("there is no next item")
        case "cycle": return JinjaValue(.method(receiver: receiver, name: "cycle"))
        case "changed": throw JinjaFailure.unsupported("loop.changed")
        default: return nil
        }
    }
}
