import Foundation

/// A value as a chat template sees it: the Python objects that Jinja (as `transformers` runs it)
/// works on. Inputs come from JSON (messages, tools, keyword arguments); the renderer adds the
/// objects a template can make itself (tuples, namespaces, dict views, macros, the loop).
///
/// Strings compare and index by Unicode code point, as Python does, never by Swift's grapheme
/// clusters or canonical equivalence. Dictionaries keep insertion order and have string keys.
public struct JinjaValue: Sendable {
    var storage: Storage

    init(_ storage: Storage) { self.storage = storage }

    indirect enum Storage: Sendable {
        /// Jinja's default `Undefined`: prints empty, is false, iterates empty; most other uses
        /// fail with `message`. Unsafe attributes (`list.append`) are undefined too.
        case undefined(message: String)
        case none
        case bool(Bool)
        case int(Int)
        case double(Double)
        case string(String)
        /// `markupsafe.Markup` (the `safe` filter): a string whose `+` escapes the other operand.
        case markup(String)
        case list([JinjaValue])
        case tuple([JinjaValue])
        case dict(JinjaDict)
        case namespace(JinjaNamespace)
        case view(JinjaView)
        case loop(JinjaLoop)
        case macro(JinjaMacro)
        /// A method looked up on a value (`message.content.strip`), called by the next `(...)`.
        case method(receiver: JinjaValue, name: String)
        /// A global function: `raise_exception`, `namespace`, `range`, `dict`, `strftime_now`.
        case function(String)
    }
}

// MARK: - Public construction and reading

extension JinjaValue {
    public static let null = JinjaValue(.none)
    public static func bool(_ value: Bool) -> JinjaValue { JinjaValue(.bool(value)) }
    public static func int(_ value: Int) -> JinjaValue { JinjaValue(.int(value)) }
    public static func double(_ value: Double) -> JinjaValue { JinjaValue(.double(value)) }
    public static func string(_ value: String) -> JinjaValue { JinjaValue(.string(value)) }
    public static func list(_ items: [JinjaValue]) -> JinjaValue { JinjaValue(.list(items)) }
    /// A dictionary with its keys in the given order (a later duplicate key replaces the value).
    public static func dict(_ pairs: [(String, JinjaValue)]) -> JinjaValue { JinjaValue(.dict(JinjaDict(pairs))) }

    static func undefined(_ message: String) -> JinjaValue { JinjaValue(.undefined(message: message)) }
    static func tuple(_ items: [JinjaValue]) -> JinjaValue { JinjaValue(.tuple(items)) }
    static func dict(_ dict: JinjaDict) -> JinjaValue { JinjaValue(.dict(dict)) }

    public var stringValue: String? {
        switch storage {
        case .string(let s), .markup(let s): return s
        default: return nil
        }
    }

    public var boolValue: Bool? { if case .bool(let b) = storage { return b } else { return nil } }
    public var isNone: Bool { if case .none = storage { return true } else { return false } }
    public var listValue: [JinjaValue]? { if case .list(let items) = storage { return items } else { return nil } }

    /// The key-value pairs of a dictionary, in order.
    public var dictValue: [(key: String, value: JinjaValue)]? {
        if case .dict(let d) = storage { return Array(d.pairs) } else { return nil }
    }

    /// A dictionary's value for `key`, nil when absent or not a dictionary.
    public subscript(key: String) -> JinjaValue? {
        if case .dict(let d) = storage { return d[key] } else { return nil }
    }

    var isUndefined: Bool { if case .undefined = storage { return true } else { return false } }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self.init(.string(value)) }
    public init(integerLiteral value: Int) { self.init(.int(value)) }
    public init(floatLiteral value: Double) { self.init(.double(value)) }
    public init(booleanLiteral value: Bool) { self.init(.bool(value)) }
    public init(arrayLiteral elements: JinjaValue...) { self.init(.list(elements)) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self.init(.dict(JinjaDict(elements))) }
}

extension JinjaValue: Equatable {
    /// Python `==` (1 == 1.0 == True, lists element-wise, dicts ignoring order). Values Python
    /// cannot compare meaningfully (views, macros) compare unequal.
    public static func == (lhs: JinjaValue, rhs: JinjaValue) -> Bool { lhs.pythonEquals(rhs) }
}

// MARK: - Containers

/// A Python dict with string keys, in insertion order. Keys compare by code point.
struct JinjaDict: Sendable {
    private(set) var keys: [String] = []
    private(set) var values: [JinjaValue] = []
    private var positions: [CodePointKey: Int] = [:]

    init() {}

    init<S: Sequence>(_ pairs: S) where S.Element == (String, JinjaValue) {
        for (key, value) in pairs { self[key] = value }
    }

    var count: Int { keys.count }
    var pairs: Zip2Sequence<[String], [JinjaValue]> { zip(keys, values) }

    subscript(key: String) -> JinjaValue? {
        get { positions[CodePointKey(key)].map { values[$0] } }
        set {
            let k = CodePointKey(key)
            if let index = positions[k] {
                if let newValue { values[index] = newValue } else { remove(at: index) }
            } else if let newValue {
                positions[k] = keys.count
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    private mutating func remove(at index: Int) {
        keys.remove(at: index)
        values.remove(at: index)
        positions = [:]
        for (i, key) in keys.enumerated() { positions[CodePointKey(key)] = i }
    }
}

/// A hashable string key that compares by code points (Swift's String compares canonically).
struct CodePointKey: Hashable, Sendable {
    let bytes: [UInt8]
    init(_ string: String) { bytes = Array(string.utf8) }
}

/// `namespace(...)`: the one mutable object a template can make; `{% set ns.x = ... %}` writes
/// through every reference to it, which is how templates carry state out of loops.
final class JinjaNamespace: @unchecked Sendable {
    var attributes: JinjaDict
    init(_ attributes: JinjaDict) { self.attributes = attributes }
}

/// Python objects that iterate like a list but print and index differently.
struct JinjaView: Sendable {
    enum Kind: Sendable, Equatable {
        case dictKeys, dictValues, dictItems
        case range(start: Int, stop: Int, step: Int)
        /// A one-shot iterator (the `items` filter's generator): it prints as an address.
        case iterator(String)
    }
    let kind: Kind
    let items: [JinjaValue]
}

/// Jinja's `loop` inside a `for` body.
struct JinjaLoop: Sendable {
    let items: [JinjaValue]
    let index0: Int
    var length: Int { items.count }
}

/// A `{% macro %}`: its parameters, body and the scope it was defined in (names it does not
/// bind resolve there, at call time).
final class JinjaMacro: @unchecked Sendable {
    let name: String
    let parameters: [(name: String, defaultValue: JinjaExpression?)]
    let body: JinjaFrame
    let closure: JinjaScope

    init(
        name: String, parameters: [(name: String, defaultValue: JinjaExpression?)], body: JinjaFrame,
        closure: JinjaScope
    ) {
        self.name = name
        self.parameters = parameters
        self.body = body
        self.closure = closure
    }
}
