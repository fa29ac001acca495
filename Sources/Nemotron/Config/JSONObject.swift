import Foundation

/// Typed, key-aliased reads from a decoded JSON object (Hugging Face config files), with errors
/// that name the file and the key. Aliases are tried in order; the first present one wins.
/// Files are read by `JSONParser` (Python's JSON: `Infinity` and `NaN` allowed); the bare
/// non-finite numbers it admits are accepted only where a key asks for them (`number`).
struct JSONObject {
    let values: [String: Any]
    let path: String

    init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NemotronError.fileMissing(path: url.path, what: "a JSON file")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NemotronError.fileUnreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        guard let dict = try JSONParser.parse(data, path: url.path) as? [String: Any] else {
            throw NemotronError.fileUnreadable(path: url.path, reason: "not a JSON object")
        }
        self.init(values: dict, path: url.path)
    }

    init(values: [String: Any], path: String) {
        self.values = values
        self.path = path
    }

    /// The first alias present with a non-null value, and its key.
    func raw(_ keys: [String]) -> (key: String, value: Any)? {
        for key in keys {
            if let value = values[key], !(value is NSNull) { return (key, value) }
        }
        return nil
    }

    func int(_ keys: String..., default fallback: Int? = nil) throws -> Int {
        guard let (key, value) = raw(keys) else { return try missing(keys, fallback) }
        if let integer = Self.integer(value) { return integer }
        throw NemotronError.configValue(path: path, key: key, value: Self.describe(value), expected: "an integer")
    }

    func optionalInt(_ keys: String...) throws -> Int? {
        guard let (key, value) = raw(keys) else { return nil }
        guard let integer = Self.integer(value) else {
            throw NemotronError.configValue(
                path: path, key: key, value: Self.describe(value), expected: "an integer or null")
        }
        return integer
    }

    func double(_ keys: String..., default fallback: Double? = nil) throws -> Double {
        guard let (key, value) = raw(keys) else { return try missing(keys, fallback) }
        guard let number = Self.numeric(value)?.doubleValue, number.isFinite else {
            throw NemotronError.configValue(
                path: path, key: key, value: Self.describe(value), expected: "a finite number")
        }
        return number
    }

    func bool(_ keys: String..., default fallback: Bool) throws -> Bool {
        guard let (key, value) = raw(keys) else { return fallback }
        guard Self.numeric(value) == nil, let flag = value as? Bool else {
            throw NemotronError.configValue(path: path, key: key, value: "\(value)", expected: "true or false")
        }
        return flag
    }

    func string(_ keys: String...) throws -> String {
        guard let (key, value) = raw(keys) else { return try missing(keys, nil) }
        guard let text = value as? String else {
            throw NemotronError.configValue(path: path, key: key, value: "\(value)", expected: "a string")
        }
        return text
    }

    /// An integer or a list of integers (`eos_token_id` may be either).
    func intList(_ keys: String...) throws -> [Int]? {
        guard let (key, value) = raw(keys) else { return nil }
        if let integer = Self.integer(value) { return [integer] }
        if let list = value as? [Any] {
            let integers = list.compactMap(Self.integer)
            if integers.count == list.count { return integers }
        }
        throw NemotronError.configValue(
            path: path, key: key, value: Self.describe(value), expected: "an integer or a list of integers")
    }

    /// Numbers as JSON numbers, as strings ("inf"), or in transformers 5's `{"__float__": "Infinity"}` form.
    static func number(_ value: Any) -> Double? {
        if let number = numeric(value) { return number.doubleValue }
        if let text = value as? String {
            switch text.lowercased() {
            case "inf", "+inf", "infinity", "+infinity": return .infinity
            case "-inf", "-infinity": return -.infinity
            default: return Double(text)
            }
        }
        if let boxed = value as? [String: Any], let inner = boxed["__float__"] { return number(inner) }
        return nil
    }

    /// A JSON number with an integral value that fits in `Int` (not NaN or ±Infinity).
    static func integer(_ value: Any) -> Int? {
        guard let number = numeric(value) else { return nil }
        let double = number.doubleValue
        guard double.isFinite, double == double.rounded(), abs(double) < 0x1p63 else { return nil }
        return number.intValue
    }

    /// An integer as written in JSON or YAML: not `2.0`, `2.5` or a boolean, and within `Int`
    /// (booleans and fractions are NSNumbers too; their type code tells them apart).
    static func exactInteger(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        switch String(cString: number.objCType) {
        case "s", "i", "l", "q": return number.intValue
        case "S", "I", "L", "Q": return number.uint64Value <= UInt64(Int.max) ? number.intValue : nil
        default: return nil
        }
    }

    /// A value as it appears in JSON, for messages (`Infinity` rather than Swift's `inf`).
    static func describe(_ value: Any) -> String {
        if let number = numeric(value), !number.doubleValue.isFinite {
            let double = number.doubleValue
            return double.isNaN ? "NaN" : double > 0 ? "Infinity" : "-Infinity"
        }
        if let text = value as? String { return "\"\(text)\"" }
        return "\(value)"
    }

    /// A JSON number. Foundation decodes JSON numbers and booleans both as NSNumber (and on Linux
    /// `is Bool` holds for 0 and 1), so booleans are told apart by their Objective-C type code.
    static func numeric(_ value: Any) -> NSNumber? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        return number
    }

    private func missing<T>(_ keys: [String], _ fallback: T?) throws -> T {
        guard let fallback else {
            throw NemotronError.configKeyMissing(path: path, key: keys.joined(separator: "' or '"))
        }
        return fallback
    }
}
