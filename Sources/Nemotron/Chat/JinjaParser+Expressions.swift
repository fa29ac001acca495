/// Jinja's expression grammar, lowest precedence first: conditional `a if b else c`, `or`,
/// `and`, `not`, comparisons (chained, with `in` / `not in`), `+ -`, `~`, `* / // %`, `**`,
/// unary `- +`, then primaries with their postfix subscripts, calls, filters and tests. As in
/// `jinja2.parser`, `~` binds tighter than `+`, and unary minus tighter than `**`.
extension JinjaParser {
    func isTupleEnd(_ extraEndRules: [String]) -> Bool {
        if current.kind == .variableEnd || current.kind == .blockEnd || isOp(current, ")") { return true }
        return current.kind == .name && extraEndRules.contains(current.text)
    }

    mutating func parseTuple(
        simplified: Bool = false, withCondexpr: Bool = true, extraEndRules: [String] = [],
        explicitParentheses: Bool = false, withNamespace: Bool = false
    ) throws -> JinjaExpression {
        var location = current.location
        var items: [JinjaExpression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expect(op: ",") }
            if isTupleEnd(extraEndRules) { break }
            items.append(
                simplified
                    ? try parsePrimary(withNamespace: withNamespace)
                    : try parseExpression(withCondexpr: withCondexpr))
            if isOp(current, ",") { isTuple = true } else { break }
            location = current.location
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got '\(Self.describe(current))'") }
        }
        return JinjaExpression(kind: .tuple(items), location: location)
    }

    mutating func parseExpression(withCondexpr: Bool = true) throws -> JinjaExpression {
        withCondexpr ? try parseCondexpr() : try parseOr()
    }

    mutating func parseCondexpr() throws -> JinjaExpression {
        var location = current.location
        var value = try parseOr()
        while skip(name: "if") {
            let test = try parseOr()
            let otherwise = skip(name: "else") ? try parseCondexpr() : nil
            value = JinjaExpression(
                kind: .conditional(test: test, value: value, otherwise: otherwise), location: location)
            location = current.location
        }
        return value
    }

    mutating func parseOr() throws -> JinjaExpression {
        var left = try parseAnd()
        while isName(current, "or") {
            let location = advance().location
            left = JinjaExpression(kind: .or(left, try parseAnd()), location: location)
        }
        return left
    }

    mutating func parseAnd() throws -> JinjaExpression {
        var left = try parseNot()
        while isName(current, "and") {
            let location = advance().location
            left = JinjaExpression(kind: .and(left, try parseNot()), location: location)
        }
        return left
    }

    mutating func parseNot() throws -> JinjaExpression {
        if isName(current, "not") {
            let location = advance().location
            return JinjaExpression(kind: .not(try parseNot()), location: location)
        }
        return try parseCompare()
    }

    static let compareOperators: [String: JinjaCompareOperator] = [
        "==": .equal, "!=": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual,
    ]

    mutating func parseCompare() throws -> JinjaExpression {
        let location = current.location
        let first = try parseMath1()
        var operations: [(op: JinjaCompareOperator, operand: JinjaExpression)] = []
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
        return operations.isEmpty ? first : JinjaExpression(kind: .compare(first, operations), location: location)
    }

    mutating func parseBinary(_ operators: [String: JinjaBinaryOperator], next: (inout Self) throws -> JinjaExpression)
        throws
        -> JinjaExpression
    {
        var left = try next(&self)
        while current.kind == .op, let op = operators[current.text] {
            let location = advance().location
            left = JinjaExpression(kind: .binary(op, left, try next(&self)), location: location)
        }
        return left
    }

    mutating func parseMath1() throws -> JinjaExpression {
        try parseBinary(["+": .add, "-": .subtract]) { try $0.parseConcat() }
    }

    mutating func parseConcat() throws -> JinjaExpression {
        let location = current.location
        var parts = [try parseMath2()]
        while skip(op: "~") { parts.append(try parseMath2()) }
        return parts.count == 1 ? parts[0] : JinjaExpression(kind: .concat(parts), location: location)
    }

    mutating func parseMath2() throws -> JinjaExpression {
        try parseBinary(["*": .multiply, "/": .divide, "//": .floorDivide, "%": .modulo]) { try $0.parsePow() }
    }

    mutating func parsePow() throws -> JinjaExpression {
        try parseBinary(["**": .power]) { try $0.parseUnary() }
    }

    mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpression {
        let location = current.location
        var node: JinjaExpression
        if skip(op: "-") {
            node = JinjaExpression(kind: .negate(try parseUnary(withFilter: false)), location: location)
        } else if skip(op: "+") {
            node = JinjaExpression(kind: .plus(try parseUnary(withFilter: false)), location: location)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    mutating func parsePrimary(withNamespace: Bool = false) throws -> JinjaExpression {
        let token = current
        let location = token.location
        switch token.kind {
        case .name:
            advance()
            switch token.text {
            case "true", "True": return JinjaExpression(kind: .constant(.bool(true)), location: location)
            case "false", "False": return JinjaExpression(kind: .constant(.bool(false)), location: location)
            case "none", "None": return JinjaExpression(kind: .constant(.null), location: location)
            default:
                if withNamespace && isOp(current, ".") {
                    advance()
                    let attribute = try expect(.name, "name")
                    let base = JinjaExpression(kind: .name(token.text), location: location)
                    return JinjaExpression(kind: .attribute(base, attribute.text), location: location)
                }
                return JinjaExpression(kind: .name(token.text), location: location)
            }
        case .string:
            var text = advance().text
            while current.kind == .string { text += advance().text }
            return JinjaExpression(kind: .constant(.string(text)), location: location)
        case .integer:
            advance()
            return JinjaExpression(kind: .constant(.int(token.integer)), location: location)
        case .float:
            advance()
            return JinjaExpression(kind: .constant(.double(token.float)), location: location)
        case .op where token.text == "(":
            advance()
            let inner = try parseTuple(explicitParentheses: true)
            try expect(op: ")")
            return inner
        case .op where token.text == "[":
            advance()
            var items: [JinjaExpression] = []
            while !isOp(current, "]") {
                if !items.isEmpty { try expect(op: ",") }
                if isOp(current, "]") { break }
                items.append(try parseExpression())
            }
            try expect(op: "]")
            return JinjaExpression(kind: .list(items), location: location)
        case .op where token.text == "{":
            advance()
            var pairs: [(key: JinjaExpression, value: JinjaExpression)] = []
            while !isOp(current, "}") {
                if !pairs.isEmpty { try expect(op: ",") }
                if isOp(current, "}") { break }
                let key = try parseExpression()
                try expect(op: ":")
                pairs.append((key, try parseExpression()))
            }
            try expect(op: "}")
            return JinjaExpression(kind: .dict(pairs), location: location)
        default:
            throw fail("unexpected '\(Self.describe(token))'")
        }
    }

    mutating func parsePostfix(_ start: JinjaExpression) throws -> JinjaExpression {
        var node = start
        while true {
            if isOp(current, ".") || isOp(current, "[") {
                node = try parseSubscript(node)
            } else if isOp(current, "(") {
                node = JinjaExpression(kind: .call(node, arguments: try parseCallArguments()), location: node.location)
            } else {
                return node
            }
        }
    }

    mutating func parseFilterExpression(_ start: JinjaExpression) throws -> JinjaExpression {
        var node = start
        while true {
            if isOp(current, "|") {
                node = try parseFilter(node)
            } else if isName(current, "is") {
                node = try parseTest(node)
            } else if isOp(current, "(") {
                node = JinjaExpression(kind: .call(node, arguments: try parseCallArguments()), location: node.location)
            } else {
                return node
            }
        }
    }

    mutating func parseSubscript(_ node: JinjaExpression) throws -> JinjaExpression {
        let token = advance()
        if token.text == "." {
            let attribute = advance()
            if attribute.kind == .name {
                return JinjaExpression(kind: .attribute(node, attribute.text), location: token.location)
            }
            guard attribute.kind == .integer else { throw fail("expected name or number", at: attribute) }
            let key = JinjaExpression(kind: .constant(.int(attribute.integer)), location: attribute.location)
            return JinjaExpression(kind: .item(node, key), location: token.location)
        }
        var arguments: [JinjaExpression] = []
        while !isOp(current, "]") {
            if !arguments.isEmpty { try expect(op: ",") }
            arguments.append(try parseSubscribed())
        }
        try expect(op: "]")
        let argument =
            arguments.count == 1 ? arguments[0] : JinjaExpression(kind: .tuple(arguments), location: token.location)
        return JinjaExpression(kind: .item(node, argument), location: token.location)
    }

    mutating func parseSubscribed() throws -> JinjaExpression {
        let location = current.location
        var parts: [JinjaExpression?]
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
        return JinjaExpression(kind: .slice(start: parts[0], stop: parts[1], step: parts[2]), location: location)
    }

    mutating func parseCallArguments() throws -> JinjaCallArguments {
        try expect(op: "(")
        var arguments = JinjaCallArguments()
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

    mutating func dottedName() throws -> (Token, String) {
        let token = try expect(.name, "name")
        var name = token.text
        while skip(op: ".") { name += "." + (try expect(.name, "name")).text }
        return (token, name)
    }

    mutating func parseFilter(_ start: JinjaExpression) throws -> JinjaExpression {
        var node = start
        while skip(op: "|") {
            let (token, name) = try dottedName()
            let arguments = isOp(current, "(") ? try parseCallArguments() : JinjaCallArguments()
            node = JinjaExpression(kind: .filter(node, name: name, arguments: arguments), location: token.location)
        }
        return node
    }

    mutating func parseTest(_ node: JinjaExpression) throws -> JinjaExpression {
        let isToken = advance()
        let negated = skip(name: "not")
        let (_, name) = try dottedName()
        var arguments = JinjaCallArguments()
        if isOp(current, "(") {
            arguments = try parseCallArguments()
        } else if [.name, .string, .integer, .float].contains(current.kind) || isOp(current, "[") || isOp(current, "{"),
            !(isName(current, "else") || isName(current, "or") || isName(current, "and"))
        {
            if isName(current, "is") { throw fail("You cannot chain multiple tests with is") }
            arguments.positional = [try parsePostfix(try parsePrimary())]
        }
        let test = JinjaExpression(kind: .test(node, name: name, arguments: arguments), location: isToken.location)
        return negated ? JinjaExpression(kind: .not(test), location: isToken.location) : test
    }
}

extension JinjaExpression.Kind {
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
