/// Jinja's compile-time scoping, as `jinja2.idtracking` works it out, reduced to the one fact
/// the renderer needs: which names a frame makes local *and undefined* when it starts.
///
/// Each frame (the template, a `for` body, its `else`, a macro, a `{% set %}` block) walks its
/// own statements, not those of nested frames. A name's first mention decides how the frame's
/// local starts: a parameter (loop variables, macro arguments), a read (then it starts as
/// whatever the enclosing scopes or the context hold), an assignment when an enclosing frame
/// already knows the name (a copy of that), or an assignment of a name no enclosing frame knows:
/// then it starts undefined, even when the context has it. Assignments inside `{% if %}`
/// branches never start undefined. So in
/// `{% macro m() %}{{ c }}{% endmacro %}{{ m() }}{% set c = 1 %}`, `m()` prints nothing even
/// when `c` is passed in, and a loop nested before `{% set c %}` in a loop body sees no `c`.
enum JinjaScoping {
    static func annotate(_ root: JinjaFrame) -> JinjaFrame {
        annotate(root, parent: nil, parameters: [], prelude: [])
    }

    private final class Symbols {
        enum Load { case parameter, resolve, alias, undefined }

        let parent: Symbols?
        var loads: [String: Load] = [:]
        var stores: Set<String> = []

        init(parent: Symbols?) { self.parent = parent }

        func copy() -> Symbols {
            let other = Symbols(parent: parent)
            other.loads = loads
            other.stores = stores
            return other
        }

        func knows(_ name: String) -> Bool { loads[name] != nil || parent?.knows(name) == true }

        func load(_ name: String) {
            if !knows(name) { loads[name] = .resolve }
        }

        func store(_ name: String) {
            stores.insert(name)
            if loads[name] == nil { loads[name] = parent?.knows(name) == true ? .alias : .undefined }
        }

        func declareParameter(_ name: String) {
            stores.insert(name)
            loads[name] = .parameter
        }

        /// After an `if`: a name assigned in any branch reads through to the enclosing scopes.
        func mergeBranches(_ branches: [Symbols]) {
            var assigned = branches.reduce(into: Set<String>()) { $0.formUnion($1.stores) }
            assigned.subtract(stores)
            for branch in branches {
                loads.merge(branch.loads) { _, new in new }
                stores.formUnion(branch.stores)
            }
            for name in assigned { loads[name] = parent?.knows(name) == true ? .alias : .resolve }
        }
    }

    private static func annotate(
        _ frame: JinjaFrame, parent: Symbols?, parameters: [String], prelude: [JinjaExpression]
    ) -> JinjaFrame {
        let symbols = Symbols(parent: parent)
        for name in parameters { symbols.declareParameter(name) }
        for expression in prelude { load(expression, into: symbols) }
        visit(frame.statements, symbols)
        var result = frame
        result.statements = frame.statements.map { annotateNested($0, symbols) }
        result.undefinedAtEntry = symbols.loads.filter { $0.value == .undefined }.map(\.key).sorted()
        return result
    }

    /// The frames nested in a statement, each analysed with this frame's final symbols as parent.
    private static func annotateNested(_ statement: JinjaStatement, _ symbols: Symbols) -> JinjaStatement {
        switch statement {
        case .forLoop(var loop):
            loop.body = annotate(loop.body, parent: symbols, parameters: ["loop"] + names(loop.target), prelude: [])
            loop.otherwise = annotate(loop.otherwise, parent: symbols, parameters: [], prelude: [])
            return .forLoop(loop)
        case .conditional(let branches, let otherwise):
            return .conditional(
                branches: branches.map { ($0.test, $0.body.map { annotateNested($0, symbols) }) },
                otherwise: otherwise.map { annotateNested($0, symbols) })
        case .assignBlock(let target, let body, let location):
            return .assignBlock(target, annotate(body, parent: symbols, parameters: [], prelude: []), location)
        case .macro(let name, let parameters, let body):
            let annotated = annotate(
                body, parent: symbols, parameters: parameters.map(\.name),
                prelude: parameters.compactMap(\.defaultValue))
            return .macro(name: name, parameters: parameters, body: annotated)
        case .generation(let body):
            return .generation(annotate(body, parent: symbols, parameters: [], prelude: []))
        default:
            return statement
        }
    }

    /// Jinja's `FrameSymbolVisitor`: this frame's reads and assignments, in order.
    private static func visit(_ statements: [JinjaStatement], _ symbols: Symbols) {
        for statement in statements {
            switch statement {
            case .text, .loopBreak, .loopContinue, .generation: break
            case .output(let expression): load(expression, into: symbols)
            case .forLoop(let loop): load(loop.iterable, into: symbols)
            case .conditional(let branches, let otherwise): visitIf(branches[...], otherwise, symbols)
            case .assign(let target, let value, _):
                load(value, into: symbols)
                store(target, symbols)
            case .assignBlock(let target, _, _): store(target, symbols)
            case .macro(let name, _, _): symbols.store(name)
            }
        }
    }

    /// Jinja's `If` node holds the first test and body, the `elif`s as nested `If`s in one
    /// branch, and the `else`.
    private static func visitIf(
        _ branches: ArraySlice<(test: JinjaExpression, body: [JinjaStatement])>, _ otherwise: [JinjaStatement],
        _ symbols: Symbols
    ) {
        guard let first = branches.first else { return }
        load(first.test, into: symbols)
        let body = symbols.copy()
        visit(first.body, body)
        let elifs = symbols.copy()
        for elif in branches.dropFirst() { visitIf([elif][...], [], elifs) }
        let otherwiseSymbols = symbols.copy()
        visit(otherwise, otherwiseSymbols)
        symbols.mergeBranches([body, elifs, otherwiseSymbols])
    }

    private static func store(_ target: JinjaAssignTarget, _ symbols: Symbols) {
        switch target {
        case .name(let name): symbols.store(name)
        case .namespaceAttribute(let namespace, _): symbols.load(namespace)
        case .tuple(let targets): for target in targets { store(target, symbols) }
        }
    }

    private static func names(_ target: JinjaAssignTarget) -> [String] {
        switch target {
        case .name(let name): return [name]
        case .namespaceAttribute: return []
        case .tuple(let targets): return targets.flatMap(names)
        }
    }

    private static func load(_ expression: JinjaExpression, into symbols: Symbols) {
        func all(_ items: [JinjaExpression]) { for item in items { load(item, into: symbols) } }
        func arguments(_ a: JinjaCallArguments) { all(a.positional + a.keyword.map(\.value)) }
        switch expression.kind {
        case .constant: break
        case .name(let name): symbols.load(name)
        case .list(let items), .tuple(let items), .concat(let items): all(items)
        case .dict(let pairs): all(pairs.flatMap { [$0.key, $0.value] })
        case .attribute(let base, _), .not(let base), .negate(let base), .plus(let base): load(base, into: symbols)
        case .item(let base, let key): all([base, key])
        case .slice(let start, let stop, let step): all([start, stop, step].compactMap { $0 })
        case .call(let callee, let a):
            load(callee, into: symbols)
            arguments(a)
        case .filter(let base, _, let a), .test(let base, _, let a):
            load(base, into: symbols)
            arguments(a)
        case .binary(_, let left, let right), .and(let left, let right), .or(let left, let right): all([left, right])
        case .compare(let first, let operations): all([first] + operations.map(\.operand))
        case .conditional(let test, let value, let otherwise): all([value, test] + (otherwise.map { [$0] } ?? []))
        }
    }
}
