import Foundation

/// A parsed Jinja template, rendered as `jinja2`'s sandboxed environment renders it for
/// `transformers`: default `Undefined`, Python semantics for values, and Jinja's scoping (each
/// `for` iteration and each macro call gets its own scope; `if` does not; `namespace()` objects
/// carry values out).
public struct JinjaTemplate: Sendable {
    let body: JinjaFrame

    /// Parses `source`; syntax errors and unsupported constructs carry their line and column.
    public init(source: String) throws {
        body = try JinjaParser.parse(source)
    }

    /// Renders with these top-level variables (they shadow the global functions of the same name).
    public func render(_ variables: [String: JinjaValue]) throws -> String {
        let root = JinjaScope(parent: nil)
        root.variables = variables
        // Names the template assigns before any use start undefined, even if passed in (Jinja).
        for name in body.undefinedAtEntry { root.variables[name] = .undefined("'\(name)' is undefined") }
        var out = ""
        let renderer = JinjaRenderer()
        // A macro keeps the scope it was defined in, which holds the macro, and a namespace may
        // hold itself: cycles that would outlive every render (found by the chat fuzz target's
        // leak check). Nothing of a render is used after it, so they are emptied at its end.
        defer {
            for scope in renderer.macroScopes.scopes { scope.variables = [:] }
            for namespace in renderer.macroScopes.namespaces { namespace.attributes = JinjaDict() }
        }
        _ = try renderer.execute(body.statements, in: root, into: &out)
        return out
    }
}

/// The scopes macros were defined in and the namespaces made during one render (see
/// `JinjaTemplate.render`).
final class JinjaMacroScopes: @unchecked Sendable {
    var scopes: [JinjaScope] = []
    var namespaces: [JinjaNamespace] = []
}

/// Variables of one template level, `for` iteration, `else` block or macro call.
final class JinjaScope: @unchecked Sendable {
    let parent: JinjaScope?
    var variables: [String: JinjaValue] = [:]

    init(parent: JinjaScope?) { self.parent = parent }

    /// A scope for `frame`, its compiler-made locals undefined until assigned.
    init(parent: JinjaScope, entering frame: JinjaFrame) {
        self.parent = parent
        for name in frame.undefinedAtEntry { variables[name] = .undefined("'\(name)' is undefined") }
    }

    func lookup(_ name: String) -> JinjaValue? {
        var scope: JinjaScope? = self
        while let s = scope {
            if let value = s.variables[name] { return value }
            scope = s.parent
        }
        return nil
    }
}

struct JinjaRenderer {
    enum Flow { case normal, breakLoop, continueLoop }

    let macroScopes = JinjaMacroScopes()

    /// The globals of transformers' environment (Jinja's own plus `raise_exception`,
    /// `strftime_now`); `lipsum`, `cycler` and `joiner` exist but fail when called.
    static let globalFunctions: Set = [
        "raise_exception", "strftime_now", "namespace", "dict", "range", "lipsum", "cycler", "joiner",
    ]

    // MARK: - Statements

    func execute(_ statements: [JinjaStatement], in scope: JinjaScope, into out: inout String) throws -> Flow {
        for statement in statements {
            switch statement {
            case .text(let text):
                out += text
            case .output(let expression):
                let value = try evaluate(expression, in: scope)
                out += try at(expression.location) { try value.pythonString() }
            case .forLoop(let loop):
                let flow = try executeFor(loop, in: scope, into: &out)
                if flow != .normal { return flow }
            case .conditional(let branches, let otherwise):
                var body = otherwise
                for branch in branches where try evaluate(branch.test, in: scope).isTruthy {
                    body = branch.body
                    break
                }
                let flow = try execute(body, in: scope, into: &out)
                if flow != .normal { return flow }
            case .assign(let target, let expression, let location):
                try assign(try evaluate(expression, in: scope), to: target, in: scope, at: location)
            case .assignBlock(let target, let body, let location):
                var captured = ""
                _ = try execute(body.statements, in: JinjaScope(parent: scope, entering: body), into: &captured)
                try assign(.string(captured), to: target, in: scope, at: location)
            case .macro(let name, let parameters, let body):
                macroScopes.scopes.append(scope)
                scope.variables[name] = JinjaValue(
                    .macro(
                        JinjaMacro(
                            name: name, parameters: parameters, body: body,
                            closure: scope)))
            case .loopBreak:
                return .breakLoop
            case .loopContinue:
                return .continueLoop
            case .generation(let body):
                let flow = try execute(body.statements, in: JinjaScope(parent: scope, entering: body), into: &out)
                if flow != .normal { return flow }
            }
        }
        return .normal
    }

    private func executeFor(_ loop: JinjaForLoop, in scope: JinjaScope, into out: inout String) throws -> Flow {
        let iterable = try evaluate(loop.iterable, in: scope)
        var items = try at(loop.iterable.location) { try iterable.iterated() }
        if let filter = loop.filter {
            items = try items.filter { item in
                let filterScope = JinjaScope(parent: scope)
                try assign(item, to: loop.target, in: filterScope, at: loop.location)
                return try evaluate(filter, in: filterScope).isTruthy
            }
        }
        // Jinja runs `else` unless some iteration reached the end of the body: a `break` or
        // `continue` in every iteration leaves it to run.
        var completedAny = false
        for index in items.indices {
            let iterationScope = JinjaScope(parent: scope, entering: loop.body)
            try assign(items[index], to: loop.target, in: iterationScope, at: loop.location)
            iterationScope.variables["loop"] = JinjaValue(.loop(JinjaLoop(items: items, index0: index)))
            let flow = try execute(loop.body.statements, in: iterationScope, into: &out)
            if flow == .breakLoop { break }
            if flow == .normal { completedAny = true }
        }
        if !completedAny && !loop.otherwise.statements.isEmpty {
            return try execute(
                loop.otherwise.statements, in: JinjaScope(parent: scope, entering: loop.otherwise), into: &out)
        }
        return .normal
    }

    private func assign(
        _ value: JinjaValue, to target: JinjaAssignTarget, in scope: JinjaScope, at location: JinjaSourceLocation
    ) throws {
        switch target {
        case .name(let name):
            scope.variables[name] = value
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let namespace)? = scope.lookup(name)?.storage else {
                throw ChatTemplateError(.render, "cannot assign attribute on non-namespace object", at: location)
            }
            if attribute.hasPrefix("_") {
                throw ChatTemplateError(
                    .render,
                    "Chat templates cannot store underscore-prefixed attributes on a "
                        + "namespace, but got '\(attribute)'.", at: location)
            }
            namespace.attributes[attribute] = value
        case .tuple(let targets):
            let items = try at(location) { try value.iterated() }
            guard items.count == targets.count else {
                let problem = items.count < targets.count ? "not enough" : "too many"
                throw ChatTemplateError(
                    .render, "\(problem) values to unpack (expected \(targets.count), got \(items.count))",
                    at: location)
            }
            for (item, target) in zip(items, targets) { try assign(item, to: target, in: scope, at: location) }
        }
    }

    // MARK: - Expressions

    /// Runs `body`, turning a position-less failure into an error at `location`.
    func at<T>(_ location: JinjaSourceLocation, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as JinjaFailure {
            let kind: ChatTemplateError.Kind =
                switch failure.kind {
                case .render: .render
                case .unsupported: .unsupported
                case .raised: .raised
                }
            throw ChatTemplateError(kind, failure.message, at: location)
        }
    }

    func evaluate(_ expression: JinjaExpression, in scope: JinjaScope) throws -> JinjaValue {
        let location = expression.location
        switch expression.kind {
        case .constant(let value):
            return value
        case .name(let name):
            if let value = scope.lookup(name) { return value }
            if Self.globalFunctions.contains(name) { return JinjaValue(.function(name)) }
            return .undefined("'\(name)' is undefined")
        case .list(let items):
            return .list(try items.map { try evaluate($0, in: scope) })
        case .tuple(let items):
            return .tuple(try items.map { try evaluate($0, in: scope) })
        case .dict(let pairs):
            var dict = JinjaDict()
            for pair in pairs {
                let key = try evaluate(pair.key, in: scope)
                guard let name = key.stringValue else {
                    throw ChatTemplateError(
                        .unsupported, "dictionary keys other than strings (got \(key.typeName))",
                        at: pair.key.location)
                }
                dict[name] = try evaluate(pair.value, in: scope)
            }
            return .dict(dict)
        case .attribute(let base, let name):
            let value = try evaluate(base, in: scope)
            return try at(location) { try value.attribute(name) }
        case .item(let base, let argument):
            let value = try evaluate(base, in: scope)
            if case .slice(let start, let stop, let step) = argument.kind {
                let bounds = try [start, stop, step].map { try $0.map { try evaluate($0, in: scope) } }
                return try at(location) { try value.sliced(bounds[0], bounds[1], bounds[2]) }
            }
            let key = try evaluate(argument, in: scope)
            return try at(location) { try value.item(key) }
        case .slice:
            throw ChatTemplateError(.syntax, "a slice outside a subscript", at: location)
        case .call(let callee, let arguments):
            let function = try evaluate(callee, in: scope)
            let (positional, keyword) = try evaluate(arguments, in: scope)
            return try call(function, positional, keyword, at: location)
        case .filter(let base, let name, let arguments):
            let value = try evaluate(base, in: scope)
            let (positional, keyword) = try evaluate(arguments, in: scope)
            return try at(location) { try JinjaFilters.apply(name, to: value, positional, keyword) }
        case .test(let base, let name, let arguments):
            let value = try evaluate(base, in: scope)
            let (positional, keyword) = try evaluate(arguments, in: scope)
            return .bool(try at(location) { try JinjaTestFunctions.apply(name, to: value, positional, keyword) })
        case .not(let operand):
            return .bool(!(try evaluate(operand, in: scope).isTruthy))
        case .negate(let operand):
            let value = try evaluate(operand, in: scope)
            return try at(location) { try JinjaOperators.negate(value) }
        case .plus(let operand):
            let value = try evaluate(operand, in: scope)
            return try at(location) { try JinjaOperators.plus(value) }
        case .binary(let op, let left, let right):
            let a = try evaluate(left, in: scope)
            let b = try evaluate(right, in: scope)
            return try at(location) { try JinjaOperators.binary(op, a, b) }
        case .concat(let parts):
            var text = ""
            for part in parts {
                let value = try evaluate(part, in: scope)
                text += try at(part.location) { try value.pythonString() }
            }
            return .string(text)
        case .compare(let first, let operations):
            var left = try evaluate(first, in: scope)
            for (op, operand) in operations {
                let right = try evaluate(operand, in: scope)
                guard try at(location, { try JinjaOperators.compare(op, left, right) }) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .and(let left, let right):
            let a = try evaluate(left, in: scope)
            return a.isTruthy ? try evaluate(right, in: scope) : a
        case .or(let left, let right):
            let a = try evaluate(left, in: scope)
            return a.isTruthy ? a : try evaluate(right, in: scope)
        case .conditional(let test, let value, let otherwise):
            if try evaluate(test, in: scope).isTruthy { return try evaluate(value, in: scope) }
            if let otherwise { return try evaluate(otherwise, in: scope) }
            return .undefined(
                "the inline if-expression on line \(location.line) evaluated to false and no else section was defined.")
        }
    }

    private func evaluate(_ arguments: JinjaCallArguments, in scope: JinjaScope) throws -> (
        [JinjaValue], [(String, JinjaValue)]
    ) {
        let positional = try arguments.positional.map { try evaluate($0, in: scope) }
        let keyword = try arguments.keyword.map { ($0.name, try evaluate($0.value, in: scope)) }
        return (positional, keyword)
    }

    // MARK: - Calls

    private func call(
        _ function: JinjaValue, _ positional: [JinjaValue], _ keyword: [(String, JinjaValue)],
        at location: JinjaSourceLocation
    ) throws -> JinjaValue {
        switch function.storage {
        case .method(let receiver, let name):
            return try at(location) { try receiver.callMethod(name, positional, keyword) }
        case .function(let name):
            if name == "raise_exception" {
                let message = try at(location) {
                    try JinjaArguments.bind("raise_exception", ["message"], positional, keyword)[0]?.pythonString()
                }
                throw ChatTemplateError(.raised, message ?? "", at: location)
            }
            let value = try at(location) { try JinjaGlobals.call(name, positional, keyword) }
            if case .namespace(let namespace) = value.storage { macroScopes.namespaces.append(namespace) }
            return value
        case .macro(let macro):
            return try callMacro(macro, positional, keyword, at: location)
        case .undefined(let message):
            throw ChatTemplateError(.render, message, at: location)
        default:
            throw ChatTemplateError(.render, "'\(function.typeName)' object is not callable", at: location)
        }
    }

    private func callMacro(
        _ macro: JinjaMacro, _ positional: [JinjaValue], _ keyword: [(String, JinjaValue)],
        at location: JinjaSourceLocation
    ) throws -> JinjaValue {
        let parameters = macro.parameters
        guard positional.count <= parameters.count else {
            throw ChatTemplateError(
                .render, "macro '\(macro.name)' takes not more than \(parameters.count) argument(s)",
                at: location)
        }
        let scope = JinjaScope(parent: macro.closure, entering: macro.body)
        var given: [String: JinjaValue] = [:]
        for (name, value) in keyword {
            guard let index = parameters.firstIndex(where: { $0.name == name }) else {
                throw ChatTemplateError(
                    .render, "macro '\(macro.name)' takes no keyword argument '\(name)'", at: location)
            }
            if index < positional.count {
                throw ChatTemplateError(
                    .render, "macro '\(macro.name)' got multiple values for argument '\(name)'",
                    at: location)
            }
            given[name] = value
        }
        for (index, parameter) in parameters.enumerated() {
            if index < positional.count {
                scope.variables[parameter.name] = positional[index]
            } else if let value = given[parameter.name] {
                scope.variables[parameter.name] = value
            } else if let defaultValue = parameter.defaultValue {
                scope.variables[parameter.name] = try evaluate(defaultValue, in: scope)
            } else {
                scope.variables[parameter.name] = .undefined("parameter '\(parameter.name)' was not provided")
            }
        }
        scope.variables["varargs"] = .tuple([])
        scope.variables["kwargs"] = .dict([])
        var out = ""
        _ = try execute(macro.body.statements, in: scope, into: &out)
        return .string(out)
    }
}
