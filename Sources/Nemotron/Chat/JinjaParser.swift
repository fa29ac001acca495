/// A recursive-descent parser that follows `jinja2.parser.Parser` function by function, so
/// operator precedence and the odd corners (`~` binding tighter than `+`, unary minus tighter
/// than `**`, test arguments without parentheses, `a if b` without `else`) come out as Jinja's.
/// Tags outside the supported set fail here, with their line and column; filter and test names
/// are checked after parsing, where Jinja's compiler checks them (`JinjaNameCheck`).
struct JinjaParser {
    typealias Token = JinjaLexer.Token

    let tokens: [Token]
    var index = 0
    var endTokenStack: [[String]] = []
    var tagStack: [String] = []
    var loopDepth = 0

    static func parse(_ source: String) throws -> JinjaFrame {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let body = try parser.subparse(endTags: nil)
        try JinjaNameCheck.check(body)
        return JinjaScoping.annotate(JinjaFrame(statements: body))
    }

    init(tokens: [Token]) { self.tokens = tokens }

    // MARK: - Token stream

    var current: Token { tokens[index] }
    var peek: Token { tokens[min(index + 1, tokens.count - 1)] }

    @discardableResult
    mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    func isName(_ token: Token, _ value: String) -> Bool { token.kind == .name && token.text == value }
    func isOp(_ token: Token, _ value: String) -> Bool { token.kind == .op && token.text == value }

    mutating func skip(op: String) -> Bool {
        guard isOp(current, op) else { return false }
        advance()
        return true
    }

    mutating func skip(name: String) -> Bool {
        guard isName(current, name) else { return false }
        advance()
        return true
    }

    func fail(_ message: String, at token: Token? = nil) -> ChatTemplateError {
        ChatTemplateError(.syntax, message, at: (token ?? current).location)
    }

    func unsupported(_ message: String, at token: Token) -> ChatTemplateError {
        ChatTemplateError(.unsupported, message, at: token.location)
    }

    /// Jinja's `describe_token`.
    static func describe(_ token: Token) -> String {
        switch token.kind {
        case .name, .op: return token.text
        case .data: return "template data / text"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .eof: return "end of template"
        }
    }

    mutating func expect(_ kind: Token.Kind, _ description: String) throws -> Token {
        guard current.kind == kind else {
            if current.kind == .eof { throw fail("unexpected end of template, expected '\(description)'.") }
            throw fail("expected token '\(description)', got '\(Self.describe(current))'")
        }
        return advance()
    }

    mutating func expect(op: String) throws {
        guard isOp(current, op) else {
            _ = try expect(.op, op)
            return
        }
        advance()
    }

    mutating func expect(name: String) throws -> Token {
        guard isName(current, name) else {
            if current.kind == .eof { throw fail("unexpected end of template, expected '\(name)'.") }
            throw fail("expected token '\(name)', got '\(Self.describe(current))'")
        }
        return advance()
    }

    // MARK: - Statements

    mutating func subparse(endTags: [String]?) throws -> [JinjaStatement] {
        var body: [JinjaStatement] = []
        if let endTags { endTokenStack.append(endTags) }
        defer { if endTags != nil { endTokenStack.removeLast() } }
        while current.kind != .eof {
            switch current.kind {
            case .data:
                body.append(.text(advance().text))
            case .variableBegin:
                advance()
                body.append(.output(try parseTuple(withCondexpr: true)))
                _ = try expect(.variableEnd, "end of print statement")
            case .blockBegin:
                advance()
                if let endTags, current.kind == .name, endTags.contains(current.text) { return body }
                body += try parseStatement()
                _ = try expect(.blockEnd, "end of statement block")
            default:
                throw fail("unexpected '\(Self.describe(current))'")
            }
        }
        return body
    }

    mutating func parseStatements(_ endTags: [String], dropNeedle: Bool = false) throws -> [JinjaStatement] {
        _ = skip(op: ":")
        _ = try expect(.blockEnd, "end of statement block")
        let body = try subparse(endTags: endTags)
        if current.kind == .eof { throw failEOF(endTags) }
        if dropNeedle { advance() }
        return body
    }

    func failEOF(_ endTags: [String]) -> ChatTemplateError {
        var message = "Unexpected end of template."
        message +=
            " Jinja was looking for the following tags: " + endTags.map { "'\($0)'" }.joined(separator: " or ") + "."
        if let open = tagStack.last { message += " The innermost block that needs to be closed is '\(open)'." }
        return fail(message)
    }

    func failUnknownTag(_ token: Token) -> ChatTemplateError {
        var message = "Encountered unknown tag '\(token.text)'."
        if let looking = endTokenStack.last {
            let expected = Set(endTokenStack.flatMap { $0 })
            let names = looking.map { "'\($0)'" }.joined(separator: " or ")
            message +=
                expected.contains(token.text)
                ? " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for "
                    + "\(names)."
                : " Jinja was looking for the following tags: \(names)."
        }
        if let open = tagStack.last { message += " The innermost block that needs to be closed is '\(open)'." }
        return fail(message, at: token)
    }

    static let unsupportedTags: Set = [
        "block", "extends", "include", "import", "from", "with", "autoescape", "call", "filter", "raw",
    ]

    mutating func parseStatement() throws -> [JinjaStatement] {
        let token = current
        guard token.kind == .name else { throw fail("tag name expected") }
        if Self.unsupportedTags.contains(token.text) {
            throw unsupported("the '{% \(token.text) %}' tag", at: token)
        }
        tagStack.append(token.text)
        defer { tagStack.removeLast() }
        switch token.text {
        case "for": return [try parseFor()]
        case "if": return [try parseIf()]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro()]
        case "print":
            advance()
            var outputs: [JinjaStatement] = []
            while current.kind != .blockEnd {
                if !outputs.isEmpty { try expect(op: ",") }
                outputs.append(.output(try parseExpression()))
            }
            return outputs
        case "break", "continue":
            advance()
            guard loopDepth > 0 else { throw fail("'\(token.text)' outside loop", at: token) }
            return [token.text == "break" ? .loopBreak(token.location) : .loopContinue(token.location)]
        case "generation":
            advance()
            return [.generation(JinjaFrame(statements: try parseStatements(["endgeneration"], dropNeedle: true)))]
        default:
            tagStack.removeLast()
            defer { tagStack.append(token.text) }
            throw failUnknownTag(token)
        }
    }

    mutating func parseFor() throws -> JinjaStatement {
        let location = try expect(name: "for").location
        let target = try parseAssignTarget(extraEndRules: ["in"])
        _ = try expect(name: "in")
        let iterable = try parseTuple(withCondexpr: false, extraEndRules: ["recursive"])
        let filter = skip(name: "if") ? try parseExpression() : nil
        if isName(current, "recursive") { throw unsupported("recursive for loops", at: current) }
        loopDepth += 1
        let body = try parseStatements(["endfor", "else"])
        loopDepth -= 1
        var otherwise: [JinjaStatement] = []
        if advance().text == "else" { otherwise = try parseStatements(["endfor"], dropNeedle: true) }
        return .forLoop(
            JinjaForLoop(
                target: target, iterable: iterable, filter: filter, body: JinjaFrame(statements: body),
                otherwise: JinjaFrame(statements: otherwise),
                location: location))
    }

    mutating func parseIf() throws -> JinjaStatement {
        _ = try expect(name: "if")
        var branches: [(test: JinjaExpression, body: [JinjaStatement])] = []
        var otherwise: [JinjaStatement] = []
        while true {
            let test = try parseTuple(withCondexpr: false)
            branches.append((test, try parseStatements(["elif", "else", "endif"])))
            let token = advance()
            if token.text == "elif" { continue }
            if token.text == "else" { otherwise = try parseStatements(["endif"], dropNeedle: true) }
            break
        }
        return .conditional(branches: branches, otherwise: otherwise)
    }

    mutating func parseSet() throws -> JinjaStatement {
        let location = advance().location
        let target = try parseAssignTarget(withNamespace: true)
        if skip(op: "=") { return .assign(target, try parseTuple(), location) }
        if isOp(current, "|") { throw unsupported("filters on a '{% set %}...{% endset %}' block", at: current) }
        return .assignBlock(target, JinjaFrame(statements: try parseStatements(["endset"], dropNeedle: true)), location)
    }

    mutating func parseMacro() throws -> JinjaStatement {
        advance()
        let name = try expect(.name, "name").text
        try expect(op: "(")
        var parameters: [(name: String, defaultValue: JinjaExpression?)] = []
        while !isOp(current, ")") {
            if !parameters.isEmpty { try expect(op: ",") }
            let parameter = try expect(.name, "name")
            if skip(op: "=") {
                parameters.append((parameter.text, try parseExpression()))
            } else {
                if parameters.contains(where: { $0.defaultValue != nil }) {
                    throw fail("non-default argument follows default argument", at: parameter)
                }
                parameters.append((parameter.text, nil))
            }
        }
        try expect(op: ")")
        let savedDepth = loopDepth
        loopDepth = 0
        defer { loopDepth = savedDepth }
        return .macro(
            name: name, parameters: parameters,
            body: JinjaFrame(statements: try parseStatements(["endmacro"], dropNeedle: true)))
    }

    mutating func parseAssignTarget(extraEndRules: [String] = [], withNamespace: Bool = false) throws
        -> JinjaAssignTarget
    {
        let expression = try parseTuple(simplified: true, extraEndRules: extraEndRules, withNamespace: withNamespace)
        func target(_ e: JinjaExpression) throws -> JinjaAssignTarget {
            switch e.kind {
            case .name(let name): return .name(name)
            case .attribute(let base, let attribute):
                if case .name(let namespace) = base.kind {
                    return .namespaceAttribute(namespace: namespace, attribute: attribute)
                }
            case .tuple(let items): return .tuple(try items.map(target))
            default: break
            }
            throw ChatTemplateError(.syntax, "can't assign to '\(e.kind.nodeName)'", at: e.location)
        }
        return try target(expression)
    }
}
