import Foundation

/// The global functions of transformers' Jinja environment, except `raise_exception` (the
/// renderer raises it itself, with the call's position): `namespace(...)` and `dict(...)` as
/// `dict(*args, **kwargs)`, the sandbox's `range` (at most 100000 items) and `strftime_now`.
enum JinjaGlobals {
    static func call(_ name: String, _ positional: [JinjaValue], _ keyword: [(String, JinjaValue)]) throws -> JinjaValue
    {
        switch name {
        case "namespace":
            let attributes = try dictionary(positional, keyword)
            if let hidden = attributes.keys.first(where: { $0.hasPrefix("_") }) {
                throw JinjaFailure.render(
                    "Chat templates cannot store underscore-prefixed attributes on a namespace, "
                        + "but got '\(hidden)'.")
            }
            return JinjaValue(.namespace(JinjaNamespace(attributes)))
        case "dict":
            return .dict(try dictionary(positional, keyword))
        case "range":
            return try range(positional, keyword)
        case "strftime_now":
            let format = try JinjaArguments.bind(name, ["format"], positional, keyword, required: 1)[0]!
            guard let text = format.stringValue else { throw JinjaFailure.render("strftime() argument 1 must be str") }
            return .string(strftimeNow(text))
        default:
            throw JinjaFailure.unsupported("the global function '\(name)'")
        }
    }

    /// Python's `dict(mapping_or_pairs, **kwargs)`.
    private static func dictionary(_ positional: [JinjaValue], _ keyword: [(String, JinjaValue)]) throws -> JinjaDict {
        guard positional.count <= 1 else {
            throw JinjaFailure.render("dict expected at most 1 argument, got \(positional.count)")
        }
        var result = JinjaDict()
        if let source = positional.first {
            if case .dict(let d) = source.storage {
                result = d
            } else {
                for (index, pair) in try source.iterated().enumerated() {
                    let items = try pair.iterated()
                    guard items.count == 2 else {
                        throw JinjaFailure.render(
                            "dictionary update sequence element #\(index) has length \(items.count); 2 is required")
                    }
                    guard let key = items[0].stringValue else {
                        throw JinjaFailure.unsupported("dictionary keys other than strings (got \(items[0].typeName))")
                    }
                    result[key] = items[1]
                }
            }
        }
        for (key, value) in keyword { result[key] = value }
        return result
    }

    private static func range(_ positional: [JinjaValue], _ keyword: [(String, JinjaValue)]) throws -> JinjaValue {
        guard keyword.isEmpty else { throw JinjaFailure.render("range() takes no keyword arguments") }
        let numbers = try positional.map { value -> Int in
            guard case .int(let i)? = value.number else {
                throw JinjaFailure.render("'\(value.typeName)' object cannot be interpreted as an integer")
            }
            return i
        }
        let (start, stop, step): (Int, Int, Int)
        switch numbers.count {
        case 1: (start, stop, step) = (0, numbers[0], 1)
        case 2: (start, stop, step) = (numbers[0], numbers[1], 1)
        case 3: (start, stop, step) = (numbers[0], numbers[1], numbers[2])
        default: throw JinjaFailure.render("range expected at most 3 arguments, got \(numbers.count)")
        }
        if step == 0 { throw JinjaFailure.render("range() arg 3 must not be zero") }
        let count =
            step > 0
            ? (stop > start ? (stop - start + step - 1) / step : 0)
            : (start > stop ? (start - stop - step - 1) / -step : 0)
        if count > 100_000 {
            throw JinjaFailure.render("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
        }
        let items = (0..<count).map { JinjaValue.int(start + $0 * step) }
        return JinjaValue(.view(JinjaView(kind: .range(start: start, stop: stop, step: step), items: items)))
    }

    /// `datetime.now().strftime(format)` through the C library, as CPython does.
    private static func strftimeNow(_ format: String) -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [Int8](repeating: 0, count: 512)
        let written = strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer.prefix(written).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
