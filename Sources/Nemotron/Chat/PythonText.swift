/// Python `str` operations on code points (not Swift graphemes): whitespace as `str.isspace`,
/// `strip`, `split`, `replace`, `find`, slicing. Chat templates use these through string methods
/// and filters, and their results must match Python's character for character.
enum PythonText {
    typealias Scalars = [Unicode.Scalar]

    static func scalars(_ s: String) -> Scalars { Array(s.unicodeScalars) }

    static func string<C: Collection>(_ scalars: C) -> String where C.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// `str.isspace` for one character (also what `\s` matches in Python's `re`).
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default: return false
        }
    }

    /// `str.strip/lstrip/rstrip(chars)`; nil `chars` strips whitespace.
    static func strip(_ s: String, chars: String?, leading: Bool = true, trailing: Bool = true) -> String {
        let text = scalars(s)
        let set = chars.map { Set($0.unicodeScalars) }
        let strips: (Unicode.Scalar) -> Bool = { c in set.map { $0.contains(c) } ?? isSpace(c) }
        var start = 0
        var end = text.count
        if leading { while start < end && strips(text[start]) { start += 1 } }
        if trailing { while end > start && strips(text[end - 1]) { end -= 1 } }
        return string(text[start..<end])
    }

    /// Index of the first occurrence of `needle` in `haystack` at or after `from`, or nil.
    static func find(_ needle: Scalars, in haystack: Scalars, from: Int = 0) -> Int? {
        if needle.isEmpty { return from <= haystack.count ? from : nil }
        guard haystack.count >= needle.count else { return nil }
        var i = from
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// Index of the last occurrence of `needle` that ends at or before `end`, or nil.
    static func rfind(_ needle: Scalars, in haystack: Scalars, end: Int) -> Int? {
        var i = end - needle.count
        while i >= 0 {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i -= 1
        }
        return nil
    }

    static func contains(_ haystack: String, _ needle: String) -> Bool {
        find(scalars(needle), in: scalars(haystack)) != nil
    }

    static func hasPrefix(_ s: Scalars, _ prefix: Scalars) -> Bool {
        s.count >= prefix.count && s[0..<prefix.count].elementsEqual(prefix)
    }

    static func hasSuffix(_ s: Scalars, _ suffix: Scalars) -> Bool {
        s.count >= suffix.count && s[(s.count - suffix.count)...].elementsEqual(suffix)
    }

    /// Non-overlapping occurrences, as `str.count`.
    static func count(_ needle: Scalars, in haystack: Scalars) -> Int {
        if needle.isEmpty { return haystack.count + 1 }
        var n = 0
        var i = 0
        while let at = find(needle, in: haystack, from: i) {
            n += 1
            i = at + needle.count
        }
        return n
    }

    /// `str.replace(old, new, count)`; a negative count replaces all.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int = -1) -> String {
        let text = scalars(s)
        let target = scalars(old)
        let replacement = scalars(new)
        var out = Scalars()
        var remaining = count < 0 ? Int.max : count
        if target.isEmpty {
            for c in text {
                if remaining > 0 {
                    out += replacement
                    remaining -= 1
                }
                out.append(c)
            }
            if remaining > 0 { out += replacement }
            return string(out)
        }
        var i = 0
        while remaining > 0, let at = find(target, in: text, from: i) {
            out += text[i..<at]
            out += replacement
            i = at + target.count
            remaining -= 1
        }
        out += text[i...]
        return string(out)
    }

    /// `str.split(sep, maxsplit)`; nil `sep` splits on whitespace runs. `sep` must not be empty.
    static func split(_ s: String, separator: String?, maxSplit: Int) -> [String] {
        let text = scalars(s)
        var limit = maxSplit < 0 ? Int.max : maxSplit
        var parts: [String] = []
        guard let separator else {
            var i = 0
            while limit > 0 {
                while i < text.count && isSpace(text[i]) { i += 1 }
                if i == text.count { break }
                let start = i
                while i < text.count && !isSpace(text[i]) { i += 1 }
                parts.append(string(text[start..<i]))
                limit -= 1
            }
            while i < text.count && isSpace(text[i]) { i += 1 }
            if i < text.count { parts.append(string(text[i...])) }
            return parts
        }
        let sep = scalars(separator)
        var i = 0
        while limit > 0, let at = find(sep, in: text, from: i) {
            parts.append(string(text[i..<at]))
            i = at + sep.count
            limit -= 1
        }
        parts.append(string(text[i...]))
        return parts
    }

    /// `str.rsplit(sep, maxsplit)`.
    static func rsplit(_ s: String, separator: String?, maxSplit: Int) -> [String] {
        let text = scalars(s)
        var limit = maxSplit < 0 ? Int.max : maxSplit
        var parts: [String] = []
        guard let separator else {
            var i = text.count - 1
            while limit > 0 {
                while i >= 0 && isSpace(text[i]) { i -= 1 }
                if i < 0 { break }
                let end = i + 1
                while i >= 0 && !isSpace(text[i]) { i -= 1 }
                parts.append(string(text[(i + 1)..<end]))
                limit -= 1
            }
            while i >= 0 && isSpace(text[i]) { i -= 1 }
            if i >= 0 { parts.append(string(text[0...i])) }
            return parts.reversed()
        }
        let sep = scalars(separator)
        var end = text.count
        while limit > 0, let at = rfind(sep, in: text, end: end) {
            parts.append(string(text[(at + sep.count)..<end]))
            end = at
            limit -= 1
        }
        parts.append(string(text[0..<end]))
        return parts.reversed()
    }

    /// `str.lower()`: full lowercase mappings, with Greek capital sigma becoming final sigma at
    /// the end of a word (Unicode's Final_Sigma condition, as CPython applies it).
    static func lower(_ s: String) -> String {
        let text = scalars(s)
        var out = String.UnicodeScalarView()
        for (i, c) in text.enumerated() {
            if c == "\u{03A3}" && isFinalSigma(text, at: i) {
                out.append("\u{03C2}")
            } else {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return String(out)
    }

    /// `str.upper()`: full uppercase mappings (`ß` becomes `SS`).
    static func upper(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars { out.append(contentsOf: c.properties.uppercaseMapping.unicodeScalars) }
        return String(out)
    }

    private static func isFinalSigma(_ text: Scalars, at index: Int) -> Bool {
        var i = index - 1
        while i >= 0 && text[i].properties.isCaseIgnorable { i -= 1 }
        guard i >= 0 && text[i].properties.isCased else { return false }
        var j = index + 1
        while j < text.count && text[j].properties.isCaseIgnorable { j += 1 }
        return !(j < text.count && text[j].properties.isCased)
    }

    /// Python's slice indices for a sequence of `count` items: `s[start:stop:step]`.
    static func sliceIndices(count: Int, start: Int?, stop: Int?, step: Int) -> [Int] {
        func clamp(_ value: Int?, _ fallback: Int, low: Int, high: Int) -> Int {
            guard var v = value else { return fallback }
            if v < 0 { v += count }
            return min(max(v, low), high)
        }
        var indices: [Int] = []
        if step > 0 {
            var i = clamp(start, 0, low: 0, high: count)
            let end = clamp(stop, count, low: 0, high: count)
            while i < end {
                indices.append(i)
                i += step
            }
        } else {
            var i = clamp(start, count - 1, low: -1, high: count - 1)
            let end = clamp(stop, -1, low: -1, high: count - 1)
            while i > end {
                indices.append(i)
                i += step
            }
        }
        return indices
    }
}
