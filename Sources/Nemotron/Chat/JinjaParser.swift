/// A recursive-descent parser that follows `jinja2.parser.Parser` function by function, so
/// operator precedence and the odd corners (`~` binding tighter than `+`, unary minus tighter
/// than `**`, test arguments without parentheses, `a if b` without `else`) come out as Jinja's.
/// Tags outside the supported set fail here, with their line and column; filter and test names
/// are checked after parsing, where Jinja's compiler checks them (`JinjaNameCheck`).
struct JinjaParser {
    typealias Token = JinjaLexer.Token

    private let tokens: [Token]
    private var index = 0
    private var endTokenStack: [[String]] = []
    private var tagStack: [String] = []
    private var loopDepth = 0

    static func parse(_ source: String) throws -> [Statement] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let body = try parser.subparse(endTags: nil)
        try JinjaNameCheck.check(body)
        return body
    }

    private init(tokens: [Token]) { self.tokens = tokens }

    // MARK: - Token stream

    private var current: Token { tokens[index] }
    private var peek: Token { tokens[min(index + 1, tokens.count - 1)] }

    @discardableResult
    private mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isName(_ token: Token, _ value: String) -> Bool { token.kind == .name && token.text == value }
    private func isOp(_ token: Token, _ value: String) -> Bool { token.kind == .op && token.text == value }

    private mutating func skip(op: String) -> Bool {
        guard isOp(current, op) else { return false }
        advance()
        return true
    }

    private mutating func skip(name: String) -> Bool {
        guard isName(current, name) else { return false }
        advance()
        return true
    }

    private func fail(_ message: String, at token: Token? = nil) -> ChatTemplateError {
        ChatTemplateError(.syntax, message, at: (token ?? current).location)
    }

    private func unsupported(_ message: String, at token: Token) -> ChatTemplateError {
        ChatTemplateError(.unsupported, message, at: token.location)
    }

    /// Jinja's `describe_token`.
    private static func describe(_ token: Token) -> String {
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

    private mutating func expect(_ kind: Token.Kind, _ description: String) throws -> Token {
        guard current.kind == kind else {
            if current.kind == .eof { throw fail("unexpected end of template, expected '\(description)'.") }
            throw fail("expected token '\(description)', got '\(Self.describe(current))'")
        }
        return advance()
    }

    private mutating func expect(op: String) throws {
        guard isOp(current, op) else { _ = try expect(.op, op); return }
        advance()
    }

    private mutating func expect(name: String) throws -> Token {
        guard isName(current, name) else {
            if current.kind == .eof { throw fail("unexpected end of template, expected '\(name)'.") }
            throw fail("expected token '\(name)', got '\(Self.describe(current))'")
        }
        return advance()
    }

    // MARK: - Statements

    private mutating func subparse(endTags: [String]?) throws -> [Statement] {
        var body: [Statement] = []
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

    private mutating func parseStatements(_ endTags: [String], dropNeedle: Bool = false) throws -> [Statement] {
        _ = skip(op: ":")
        _ = try expect(.blockEnd, "end of statement block")
        let body = try subparse(endTags: endTags)
        if current.kind == .eof { throw failEOF(endTags) }
        if dropNeedle { advance() }
        return body
    }

    private func failEOF(_ endTags: [String]) -> ChatTemplateError {
        var message = "Unexpected end of template."
        message += " Jinja was looking for the following tags: " + endTags.map { "'\($0)'" }.joined(separator: " or ") + "."
        if let open = tagStack.last { message += " The innermost block that needs to be closed is '\(open)'." }
        return fail(message)
    }

    private func failUnknownTag(_ token: Token) -> ChatTemplateError {
        var message = "Encountered unknown tag '\(token.text)'."
        if let looking = endTokenStack.last {
            let expected = Set(endTokenStack.flatMap { $0 })
            let names = looking.map { "'\($0)'" }.joined(separator: " or ")
            message += expected.contains(token.text)
                ? " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for \(names)."
                : " Jinja was looking for the following tags: \(names)."
        }
        if let open = tagStack.last { message += " The innermost block that needs to be closed is '\(open)'." }
        return fail(message, at: token)
    }

    private static let unsupportedTags: Set = [
        "block", "extends", "include", "import", "from", "with", "autoescape", "call", "filter", "raw",
    ]

    private mutating func parseStatement() throws -> [Statement] {
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
            var outputs: [Statement] = []
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
            return [.generation(try parseStatements(["endgeneration"], dropNeedle: true))]
        default:
            tagStack.removeLast()
            defer { tagStack.append(token.text) }
            throw failUnknownTag(token)
        }
    }

    private mutating func parseFor() throws -> Statement {
        let location = try expect(name: "for").location
        let target = try parseAssignTarget(extraEndRules: ["in"])
        _ = try expect(name: "in")
        let iterable = try parseTuple(withCondexpr: false, extraEndRules: ["recursive"])
        let filter = skip(name: "if") ? try parseExpression() : nil
        if isName(current, "recursive") { throw unsupported("recursive for loops", at: current) }
        loopDepth += 1
        let body = try parseStatements(["endfor", "else"])
        loopDepth -= 1
        var otherwise: [Statement] = []
        if advance().text == "else" { otherwise = try parseStatements(["endfor"], dropNeedle: true) }
        return .forLoop(ForLoop(target: target, iterable: iterable, filter: filter, body: body, otherwise: otherwise,
                                location: location))
    }

    private mutating func parseIf() throws -> Statement {
        _ = try expect(name: "if")
        var branches: [(test: Expression, body: [Statement])] = []
        var otherwise: [Statement] = []
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

    private mutating func parseSet() throws -> Statement {
        let location = advance().location
        let target = try parseAssignTarget(withNamespace: true)
        if skip(op: "=") { return .assign(target, try parseTuple(), location) }
        if isOp(current, "|") { throw unsupported("filters on a '{% set %}...{% endset %}' block", at: current) }
        return .assignBlock(target, try parseStatements(["endset"], dropNeedle: true), location)
    }

    private mutating func parseMacro() throws -> Statement {
        advance()
        let name = try expect(.name, "name").text
        try expect(op: "(")
        var parameters: [(name: String, defaultValue: Expression?)] = []
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
        return .macro(name: name, parameters: parameters, body: try parseStatements(["endmacro"], dropNeedle: true))
    }

    private mutating func parseAssignTarget(extraEndRules: [String] = [], withNamespace: Bool = false) throws
        -> AssignTarget
    {
        let expression = try parseTuple(simplified: true, extraEndRules: extraEndRules, withNamespace: withNamespace)
        func target(_ e: Expression) throws -> AssignTarget {
            switch e.kind {
            case .name(let name): return .name(name)
            case .attribute(let base, let attribute):
                if case .name(let namespace) = base.kind { return .namespaceAttribute(namespace: namespace, attribute: attribute) }
            case .tuple(let items): return .tuple(try items.map(target))
            default: break
            }
            throw ChatTemplateError(.syntax, "can't assign to '\(e.kind.nodeName)'", at: e.location)
        }
        return try target(expression)
    }

    // MARK: - Expressions

    private func isTupleEnd(_ extraEndRules: [String]) -> Bool {
        if current.kind == .variableEnd || current.kind == .blockEnd || isOp(current, ")") { return true }
        return current.kind == .name && extraEndRules.contains(current.text)
    }

    private mutating func parseTuple(simplified: Bool = false, withCondexpr: Bool = true, extraEndRules: [String] = [],
                                     explicitParentheses: Bool = false, withNamespace: Bool = false) throws -> Expression
    {
        var location = current.location
        var items: [Expression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expect(op: ",") }
            if isTupleEnd(extraEndRules) { break }
            items.append(simplified ? try parsePrimary(withNamespace: withNamespace)
                         : try parseExpression(withCondexpr: withCondexpr))
            if isOp(current, ",") { isTuple = true } else { break }
            location = current.location
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got '\(Self.describe(current))'") }
        }
        return Expression(kind: .tuple(items), location: location)
    }

    private mutating func parseExpression(withCondexpr: Bool = true) throws -> Expression {
        withCondexpr ? try parseCondexpr() : try parseOr()
    }

    private mutating func parseCondexpr() throws -> Expression {
        var location = current.location
        var value = try parseOr()
        while skip(name: "if") {
            let test = try parseOr()
            let otherwise = skip(name: "else") ? try parseCondexpr() : nil
            value = Expression(kind: .conditional(test: test, value: value, otherwise: otherwise), location: location)
            location = current.location
        }
        return value
    }

    private mutating func parseOr() throws -> Expression {
        var left = try parseAnd()
        while isName(current, "or") {
            let location = advance().location
            left = Expression(kind: .or(left, try parseAnd()), location: location)
        }
        return left
    }

    private mutating func parseAnd() throws -> Expression {
        var left = try parseNot()
        while isName(current, "and") {
            let location = advance().location
            left = Expression(kind: .and(left, try parseNot()), location: location)
        }
        return left
    }

    private mutating func parseNot() throws -> Expression {
        if isName(current, "not") {
            let location = advance().location
            return Expression(kind: .not(try parseNot()), location: location)
        }
        return try parseCompare()
    }

    private static let compareOperators: [String: CompareOperator] = [
        "==": .equal, "!=": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual,
    ]

    private mutating func parseCompare() throws -> Expression {
        let location = current.location
        let first = try parseMath1()
        var operations: [(op: CompareOperator, operand: Expression)] = []
        while true {
            if current.kind == .op, let op = Self.compareOperators[current.text] {
                advance()
                operations.append((op, try parseMath1()))
            } else if skip(name: "in") {
                operations.append((.isIn, try parseMath1()))
            } else if isName(current, "not") && isName(peek, "in") {
                advance()
                advance()
                operations.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? first : Expression(kind: .compare(first, operations), location: location)
    }

    private mutating func parseBinary(_ operators: [String: BinaryOperator], next: (inout Self) throws -> Expression) throws
        -> Expression
    {
        var left = try next(&self)
        while current.kind == .op, let op = operators[current.text] {
            let location = advance().location
            left = Expression(kind: .binary(op, left, try next(&self)), location: location)
        }
        return left
    }

    private mutating func parseMath1() throws -> Expression {
        try parseBinary(["+": .add, "-": .subtract]) { try $0.parseConcat() }
    }

    private mutating func parseConcat() throws -> Expression {
        let location = current.location
        var parts = [try parseMath2()]
        while skip(op: "~") { parts.append(try parseMath2()) }
        return parts.count == 1 ? parts[0] : Expression(kind: .concat(parts), location: location)
    }

    private mutating func parseMath2() throws -> Expression {
        try parseBinary(["*": .multiply, "/": .divide, "//": .floorDivide, "%": .modulo]) { try $0.parsePow() }
    }

    private mutating func parsePow() throws -> Expression {
        try parseBinary(["**": .power]) { try $0.parseUnary() }
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> Expression {
        let location = current.location
        var node: Expression
        if skip(op: "-") {
            node = Expression(kind: .negate(try parseUnary(withFilter: false)), location: location)
        } else if skip(op: "+") {
            node = Expression(kind: .plus(try parseUnary(withFilter: false)), location: location)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary(withNamespace: Bool = false) throws -> Expression {
        let token = current
        let location = token.location
        switch token.kind {
        case .name:
            advance()
            switch token.text {
            case "true", "True": return Expression(kind: .constant(.bool(true)), location: location)
            case "false", "False": return Expression(kind: .constant(.bool(false)), location: location)
            case "none", "None": return Expression(kind: .constant(.null), location: location)
            default:
                if withNamespace && isOp(current, ".") {
                    advance()
                    let attribute = try expect(.name, "name")
                    let base = Expression(kind: .name(token.text), location: location)
                    return Expression(kind: .attribute(base, attribute.text), location: location)
                }
                return Expression(kind: .name(token.text), location: location)
            }
        case .string:
            var text = advance().text
            while current.kind == .string { text += advance().text }
            return Expression(kind: .constant(.string(text)), location: location)
        case .integer:
            advance()
            return Expression(kind: .constant(.int(token.integer)), location: location)
        case .float:
            advance()
            return Expression(kind: .constant(.double(token.float)), location: location)
        case .op where token.text == "(":
            advance()
            let inner = try parseTuple(explicitParentheses: true)
            try expect(op: ")")
            return inner
        case .op where token.text == "[":
            advance()
            var items: [Expression] = []
            while !isOp(current, "]") {
                if !items.isEmpty { try expect(op: ",") }
                if isOp(current, "]") { break }
                items.append(try parseExpression())
            }
            try expect(op: "]")
            return Expression(kind: .list(items), location: location)
        case .op where token.text == "{":
            advance()
            var pairs: [(key: Expression, value: Expression)] = []
            while !isOp(current, "}") {
                if !pairs.isEmpty { try expect(op: ",") }
                if isOp(current, "}") { break }
                let key = try parseExpression()
                try expect(op: ":")
                pairs.append((key, try parseExpression()))
            }
            try expect(op: "}")
            return Expression(kind: .dict(pairs), location: location)
        default:
            throw fail("unexpected '\(Self.describe(token))'")
        }
    }

    private mutating func parsePostfix(_ start: Expression) throws -> Expression {
        var node = start
        while true {
            if isOp(current, ".") || isOp(current, "[") {
                node = try parseSubscript(node)
            } else if isOp(current, "(") {
                node = Expression(kind: .call(node, arguments: try parseCallArguments()), location: node.location)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpression(_ start: Expression) throws -> Expression {
        var node = start
        while true {
            if isOp(current, "|") {
                node = try parseFilter(node)
            } else if isName(current, "is") {
                node = try parseTest(node)
            } else if isOp(current, "(") {
                node = Expression(kind: .call(node, arguments: try parseCallArguments()), location: node.location)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: Expression) throws -> Expression {
        let token = advance()
        if token.text == "." {
            let attribute = advance()
            if attribute.kind == .name { return Expression(kind: .attribute(node, attribute.text), location: token.location) }
            guard attribute.kind == .integer else { throw fail("expected name or number", at: attribute) }
            let key = Expression(kind: .constant(.int(attribute.integer)), location: attribute.location)
            return Expression(kind: .item(node, key), location: token.location)
        }
        var arguments: [Expression] = []
        while !isOp(current, "]") {
            if !arguments.isEmpty { try expect(op: ",") }
            arguments.append(try parseSubscribed())
        }
        try expect(op: "]")
        let argument = arguments.count == 1 ? arguments[0] : Expression(kind: .tuple(arguments), location: token.location)
        return Expression(kind: .item(node, argument), location: token.location)
    }

    private mutating func parseSubscribed() throws -> Expression {
        let location = current.location
        var parts: [Expression?]
        if skip(op: ":") {
            parts = [nil]
        } else {
            let node = try parseExpression()
            if !skip(op: ":") { return node }
            parts = [node]
        }
        if isOp(current, ":") || isOp(current, "]") || isOp(current, ",") {
            parts.append(nil)
        } else {
            parts.append(try parseExpression())
        }
        if skip(op: ":") {
            parts.append(isOp(current, "]") || isOp(current, ",") ? nil : try parseExpression())
        } else {
            parts.append(nil)
        }
        return Expression(kind: .slice(start: parts[0], stop: parts[1], step: parts[2]), location: location)
    }

    private mutating func parseCallArguments() throws -> Arguments {
        try expect(op: "(")
        var arguments = Arguments()
        var requireComma = false
        while !isOp(current, ")") {
            if requireComma {
                try expect(op: ",")
                if isOp(current, ")") { break }
            }
            if isOp(current, "*") || isOp(current, "**") {
                throw unsupported("'\(current.text)' argument unpacking in calls", at: current)
            }
            if current.kind == .name && isOp(peek, "=") {
                let name = advance().text
                advance()
                arguments.keyword.append((name, try parseExpression()))
            } else {
                if !arguments.keyword.isEmpty { throw fail("invalid syntax for function call expression") }
                arguments.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expect(op: ")")
        return arguments
    }

    private mutating func dottedName() throws -> (Token, String) {
        let token = try expect(.name, "name")
        var name = token.text
        while skip(op: ".") { name += "." + (try expect(.name, "name")).text }
        return (token, name)
    }

    private mutating func parseFilter(_ start: Expression) throws -> Expression {
        var node = start
        while skip(op: "|") {
            let (token, name) = try dottedName()
            let arguments = isOp(current, "(") ? try parseCallArguments() : Arguments()
            node = Expression(kind: .filter(node, name: name, arguments: arguments), location: token.location)
        }
        return node
    }

    private mutating func parseTest(_ node: Expression) throws -> Expression {
        let isToken = advance()
        let negated = skip(name: "not")
        let (_, name) = try dottedName()
        var arguments = Arguments()
        if isOp(current, "(") {
            arguments = try parseCallArguments()
        } else if [.name, .string, .integer, .float].contains(current.kind) || isOp(current, "[") || isOp(current, "{"),
            !(isName(current, "else") || isName(current, "or") || isName(current, "and"))
        {
            if isName(current, "is") { throw fail("You cannot chain multiple tests with is") }
            arguments.positional = [try parsePostfix(try parsePrimary())]
        }
        let test = Expression(kind: .test(node, name: name, arguments: arguments), location: isToken.location)
        return negated ? Expression(kind: .not(test), location: isToken.location) : test
    }
}

extension Expression.Kind {
    /// Jinja's node class name, for "can't assign to" errors.
    var nodeName: String {
        switch self {
        case .constant: return "const"
        case .name: return "name"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .attribute: return "getattr"
        case .item: return "getitem"
        case .slice: return "slice"
        case .call: return "call"
        case .filter: return "filter"
        case .test: return "test"
        case .not: return "not"
        case .negate: return "neg"
        case .plus: return "pos"
        case .binary: return "binexpr"
        case .concat: return "concat"
        case .compare: return "compare"
        case .and: return "and"
        case .or: return "or"
        case .conditional: return "condexpr"
        }
    }
}
