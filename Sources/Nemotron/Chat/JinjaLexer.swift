/// Splits a template into Jinja tokens exactly as `jinja2.lexer.Lexer` does with the settings
/// of `transformers` (`trim_blocks=True`, `lstrip_blocks=True`, default delimiters, no line
/// statements, `keep_trailing_newline=False`):
/// - newlines (`\r\n`, `\r`, `\n`) become `\n`, and one trailing newline is dropped;
/// - `{%-`, `{#-`, `{{-` strip all whitespace before the tag; `-%}`, `-#}`, `-}}` all after it;
/// - lstrip_blocks: a block or comment tag (not `{{`, not `{%+`) preceded on its line only by
///   whitespace takes that whitespace away;
/// - trim_blocks: one newline right after `%}` or `#}` (not `+%}`) is dropped;
/// - inside tags: whitespace, floats, integers, names, strings (Python escapes, raw newlines),
///   operators; `%}` and `}}` only end a tag outside brackets.
struct JinjaLexer {
    struct Token {
        enum Kind: Equatable {
            case data, variableBegin, variableEnd, blockBegin, blockEnd
            case name, string, integer, float, op, eof
        }
        let kind: Kind
        /// Data text, name, operator, or the decoded string literal.
        let text: String
        var integer: Int = 0
        var float: Double = 0
        let location: JinjaSourceLocation
    }

    private let source: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var pos = 0
    private var lineStarting = true
    private(set) var tokens: [Token] = []

    /// The source after Jinja's newline normalisation (what line and column numbers refer to).
    static func normalize(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.unicodeScalars.count)
        var previousCR = false
        for c in text.unicodeScalars {
            if c == "\n" && previousCR {
                previousCR = false
                continue
            }
            previousCR = c == "\r"
            out.append(c == "\r" ? "\n" : c)
        }
        if out.last == "\n" { out.removeLast() }
        return out
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var lexer = JinjaLexer(source: normalize(text))
        try lexer.run()
        return lexer.tokens
    }

    private init(source: [Unicode.Scalar]) {
        self.source = source
        for (i, c) in source.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    func location(_ offset: Int) -> JinjaSourceLocation {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return JinjaSourceLocation(line: low + 1, column: offset - lineStarts[low] + 1)
    }

    private func at(_ offset: Int) -> Unicode.Scalar? { offset < source.count ? source[offset] : nil }

    private func starts(with text: String, at offset: Int) -> Bool {
        var i = offset
        for c in text.unicodeScalars {
            guard at(i) == c else { return false }
            i += 1
        }
        return true
    }

    private func error(_ message: String, at offset: Int) -> ChatTemplateError {
        ChatTemplateError(.syntax, message, at: location(offset))
    }

    private mutating func emit(_ kind: Token.Kind, _ text: String, at offset: Int) {
        tokens.append(Token(kind: kind, text: text, location: location(offset)))
    }

    // MARK: - Template data and tags

    private mutating func run() throws {
        while pos < source.count {
            guard let open = nextTagStart(from: pos) else {
                emit(.data, PythonText.string(source[pos...]), at: pos)
                pos = source.count
                break
            }
            let kind = source[open + 1]
            let sign = at(open + 2).flatMap { $0 == "-" || $0 == "+" ? $0 : nil }
            var text = Array(source[pos..<open])
            if sign == "-" {
                while let last = text.last, PythonText.isSpace(last) { text.removeLast() }
            } else if sign != "+" && kind != "{" {
                // lstrip_blocks: only whitespace between the line start and a block or comment tag.
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if (lineStart > 0 || lineStarting) && lineStart < text.count
                    && text[lineStart...].allSatisfy(PythonText.isSpace)
                {
                    text.removeSubrange(lineStart...)
                }
            }
            if !text.isEmpty { emit(.data, PythonText.string(text), at: pos) }
            lineStarting = false
            let bodyStart = open + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case "#": try skipComment(from: bodyStart, openedAt: open)
            case "%":
                emit(.blockBegin, "{%", at: open)
                pos = bodyStart
                try lexTag(block: true)
            default:
                emit(.variableBegin, "{{", at: open)
                pos = bodyStart
                try lexTag(block: false)
            }
        }
        emit(.eof, "", at: source.count)
    }

    private func nextTagStart(from start: Int) -> Int? {
        var i = start
        while i + 1 < source.count {
            if source[i] == "{", source[i + 1] == "{" || source[i + 1] == "%" || source[i + 1] == "#" { return i }
            i += 1
        }
        return nil
    }

    private mutating func skipComment(from start: Int, openedAt open: Int) throws {
        var i = start
        while i < source.count {
            if starts(with: "+#}", at: i) {
                finishTag(at: i + 3)
                return
            }
            if starts(with: "-#}", at: i) {
                var end = i + 3
                while end < source.count && PythonText.isSpace(source[end]) { end += 1 }
                finishTag(at: end)
                return
            }
            if starts(with: "#}", at: i) {
                finishTag(at: i + 2 + (at(i + 2) == "\n" ? 1 : 0))
                return
            }
            i += 1
        }
        throw error("Missing end of comment tag", at: open)
    }

    private mutating func finishTag(at end: Int) {
        lineStarting = end > 0 && source[end - 1] == "\n"
        pos = end
    }

    /// The tokens inside `{% %}` or `{{ }}`, up to and including the closing delimiter.
    private mutating func lexTag(block: Bool) throws {
        var brackets: [Unicode.Scalar] = []
        while pos < source.count {
            if brackets.isEmpty, let end = tagEnd(block: block) {
                emit(block ? .blockEnd : .variableEnd, block ? "%}" : "}}", at: pos)
                finishTag(at: end)
                return
            }
            let c = source[pos]
            if PythonText.isSpace(c) {
                pos += 1
                continue
            }
            if let end = floatEnd(at: pos) {
                let text = PythonText.string(source[pos..<end]).replacingOccurrences(of: "_", with: "")
                var token = Token(kind: .float, text: text, location: location(pos))
                token.float = Double(text) ?? .nan
                tokens.append(token)
                pos = end
            } else if let (end, value) = try integer(at: pos) {
                var token = Token(kind: .integer, text: PythonText.string(source[pos..<end]), location: location(pos))
                token.integer = value
                tokens.append(token)
                pos = end
            } else if Self.isNameStart(c) {
                var end = pos + 1
                while end < source.count && Self.isNameContinue(source[end]) { end += 1 }
                emit(.name, PythonText.string(source[pos..<end]), at: pos)
                pos = end
            } else if c == "'" || c == "\"", let end = stringEnd(at: pos) {
                let value = try Self.decodeEscapes(Array(source[(pos + 1)..<(end - 1)]), at: location(pos))
                emit(.string, value, at: pos)
                pos = end
            } else if let op = Self.operators.first(where: { starts(with: $0, at: pos) }) {
                try balance(op, brackets: &brackets)
                emit(.op, op, at: pos)
                pos += op.unicodeScalars.count
            } else {
                throw error("unexpected char \(PythonFormat.stringRepr(String(c)))", at: pos)
            }
        }
    }

    private func tagEnd(block: Bool) -> Int? {
        if block {
            if starts(with: "+%}", at: pos) { return pos + 3 }
            if starts(with: "-%}", at: pos) { return skipSpace(from: pos + 3) }
            if starts(with: "%}", at: pos) { return pos + 2 + (at(pos + 2) == "\n" ? 1 : 0) }
        } else {
            if starts(with: "-}}", at: pos) { return skipSpace(from: pos + 3) }
            if starts(with: "}}", at: pos) { return pos + 2 }
        }
        return nil
    }

    private func skipSpace(from start: Int) -> Int {
        var i = start
        while i < source.count && PythonText.isSpace(source[i]) { i += 1 }
        return i
    }

    private mutating func balance(_ op: String, brackets: inout [Unicode.Scalar]) throws {
        switch op {
        case "{": brackets.append("}")
        case "(": brackets.append(")")
        case "[": brackets.append("]")
        case "}", ")", "]":
            guard let expected = brackets.popLast() else { throw error("unexpected '\(op)'", at: pos) }
            if String(expected) != op { throw error("unexpected '\(op)', expected '\(expected)'", at: pos) }
        default: break
        }
    }

    // MARK: - Literals and names

    /// Jinja's operators, longest first.
    static let operators = [
        "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")",
        "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private static func isDigit(_ c: Unicode.Scalar?) -> Bool { c.map { ("0"..."9").contains($0) } ?? false }

    /// `(\d+_)*\d+` from `offset`: its end, or nil without a leading digit.
    private func digitGroup(at offset: Int) -> Int? {
        guard Self.isDigit(at(offset)) else { return nil }
        var i = offset
        while Self.isDigit(at(i)) { i += 1 }
        while at(i) == "_" && Self.isDigit(at(i + 1)) {
            i += 1
            while Self.isDigit(at(i)) { i += 1 }
        }
        return i
    }

    private func exponentEnd(at offset: Int) -> Int? {
        guard at(offset) == "e" || at(offset) == "E" else { return nil }
        var i = offset + 1
        if at(i) == "+" || at(i) == "-" { i += 1 }
        return digitGroup(at: i)
    }

    /// Jinja's float: digits with a fraction, an exponent, or both; not right after a dot.
    private func floatEnd(at offset: Int) -> Int? {
        guard offset == 0 || source[offset - 1] != ".", let whole = digitGroup(at: offset) else { return nil }
        if at(whole) == ".", let fraction = digitGroup(at: whole + 1) {
            return exponentEnd(at: fraction) ?? fraction
        }
        return exponentEnd(at: whole)
    }

    /// Jinja's integer: `0b`, `0o`, `0x` forms, decimal, or zeros; with single underscores.
    private func integer(at offset: Int) throws -> (Int, Int)? {
        guard let first = at(offset), Self.isDigit(first) else { return nil }
        var end = offset
        var radix = 10
        func run(from start: Int, _ isValid: (Unicode.Scalar) -> Bool) -> Int {
            var i = start
            while true {
                if let c = at(i), isValid(c) {
                    i += 1
                } else if at(i) == "_", let c = at(i + 1), isValid(c) {
                    i += 2
                } else {
                    break
                }
            }
            return i
        }
        let radixByLetter: [Unicode.Scalar: Int] = ["b": 2, "B": 2, "o": 8, "O": 8, "x": 16, "X": 16]
        if first == "0", let p = at(offset + 1), let prefixRadix = radixByLetter[p] {
            radix = prefixRadix
            let valid: (Unicode.Scalar) -> Bool = { c in
                guard let v = Int(String(c), radix: 16) else { return false }
                return v < radix
            }
            let digitsEnd = run(from: offset + 2, valid)
            if digitsEnd > offset + 2 {
                end = digitsEnd
            }
        }
        if end == offset {
            radix = 10
            end = first == "0" ? run(from: offset + 1) { $0 == "0" } : run(from: offset + 1, Self.isDigit)
        }
        var digits = PythonText.string(source[offset..<end]).replacingOccurrences(of: "_", with: "")
        if radix != 10 { digits = String(digits.dropFirst(2)) }
        guard let value = Int(digits, radix: radix) else {
            throw ChatTemplateError(
                .unsupported, "integer literal \(digits) does not fit in 64 bits", at: location(offset))
        }
        return (end, value)
    }

    static func isNameStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic
    }

    static func isNameContinue(_ c: Unicode.Scalar) -> Bool {
        if c == "_" || c.properties.isAlphabetic { return true }
        switch c.properties.generalCategory {
        case .decimalNumber, .nonspacingMark, .spacingMark, .connectorPunctuation: return true
        default: return false
        }
    }

    /// The end of a quoted string starting at `offset` (backslash escapes any character), or nil
    /// when it is not closed.
    private func stringEnd(at offset: Int) -> Int? {
        let quote = source[offset]
        var i = offset + 1
        while i < source.count {
            if source[i] == "\\" {
                i += 2
            } else if source[i] == quote {
                return i + 1
            } else {
                i += 1
            }
        }
        return nil
    }

    /// Jinja decodes a literal as `text.encode("ascii", "backslashreplace").decode("unicode-escape")`:
    /// Python's escapes, and a backslash before a non-ASCII character keeps both as text.
    static func decodeEscapes(_ text: [Unicode.Scalar], at location: JinjaSourceLocation) throws -> String {
        var out = String.UnicodeScalarView()
        var i = 0
        func fail(_ message: String) -> ChatTemplateError { ChatTemplateError(.syntax, message, at: location) }
        func hex(_ count: Int, _ escape: String) throws -> Unicode.Scalar {
            guard i + count <= text.count,
                text[i..<(i + count)].allSatisfy({ $0.properties.isASCIIHexDigit }),
                let value = UInt32(PythonText.string(text[i..<(i + count)]), radix: 16)
            else { throw fail("truncated \\\(escape) escape") }
            guard let scalar = Unicode.Scalar(value) else {
                if value > 0x10FFFF { throw fail("illegal Unicode character") }
                throw ChatTemplateError(.unsupported, "string literal with a lone surrogate \\\(escape)", at: location)
            }
            i += count
            return scalar
        }
        while i < text.count {
            let c = text[i]
            i += 1
            guard c == "\\" else {
                out.append(c)
                continue
            }
            guard i < text.count else { throw fail("\\ at end of string") }
            let e = text[i]
            i += 1
            switch e {
            case "\n": break
            case "\\", "'", "\"": out.append(e)
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var value = e.value - 0x30
                var n = 1
                while n < 3, i < text.count, ("0"..."7").contains(text[i]) {
                    value = value * 8 + text[i].value - 0x30
                    i += 1
                    n += 1
                }
                out.append(Unicode.Scalar(value)!)
            case "x": out.append(try hex(2, "xXX"))
            case "u": out.append(try hex(4, "uXXXX"))
            case "U": out.append(try hex(8, "UXXXXXXXX"))
            case "N": throw ChatTemplateError(.unsupported, "\\N{...} escapes in string literals", at: location)
            default:
                out.append("\\")
                if e.isASCII {
                    out.append(e)
                } else {
                    // backslashreplace turned the character into an escape whose backslash the
                    // decoder then pairs with this one, leaving the escape's text.
                    let v = e.value
                    let digits = String(v, radix: 16)
                    let escaped =
                        v < 0x100
                        ? "x" + String(repeating: "0", count: 2 - digits.count) + digits
                        : v < 0x10000
                            ? "u" + String(repeating: "0", count: 4 - digits.count) + digits
                            : "U" + String(repeating: "0", count: 8 - digits.count) + digits
                    out.append(contentsOf: escaped.unicodeScalars)
                }
            }
        }
        return String(out)
    }
}
