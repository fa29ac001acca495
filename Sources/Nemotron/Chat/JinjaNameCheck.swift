/// Jinja's compile-time check of filter and test names: a name that no filter (or test) has is
/// a syntax error, except inside an `{% if %}` (test and branches) or an inline `a if b else c`,
/// where Jinja defers the error until the filter actually runs. A `for` body, its `if` filter and
/// `else`, a macro and a `{% set %}` block start a fresh frame, outside that leniency again.
enum JinjaNameCheck {
    static func check(_ statements: [JinjaStatement], soft: Bool = false) throws {
        for statement in statements {
            switch statement {
            case .text, .loopBreak, .loopContinue: break
            case .output(let expression): try check(expression, soft: soft)
            case .forLoop(let loop):
                try check(loop.iterable, soft: soft)
                if let filter = loop.filter { try check(filter, soft: false) }
                try check(loop.body.statements)
                try check(loop.otherwise.statements)
            case .conditional(let branches, let otherwise):
                for branch in branches {
                    try check(branch.test, soft: true)
                    try check(branch.body, soft: true)
                }
                try check(otherwise, soft: true)
            case .assign(_, let value, _): try check(value, soft: soft)
            case .assignBlock(_, let body, _): try check(body.statements)
            case .macro(_, let parameters, let body):
                for case let value? in parameters.map(\.defaultValue) { try check(value, soft: false) }
                try check(body.statements)
            case .generation(let body): try check(body.statements)
            }
        }
    }

    private static func check(_ expression: JinjaExpression, soft: Bool) throws {
        func all(_ items: [JinjaExpression], soft: Bool) throws { for item in items { try check(item, soft: soft) } }
        func arguments(_ a: JinjaCallArguments) throws { try all(a.positional + a.keyword.map(\.value), soft: soft) }
        switch expression.kind {
        case .constant, .name: break
        case .list(let items), .tuple(let items), .concat(let items): try all(items, soft: soft)
        case .dict(let pairs): try all(pairs.flatMap { [$0.key, $0.value] }, soft: soft)
        case .attribute(let base, _), .not(let base), .negate(let base), .plus(let base): try check(base, soft: soft)
        case .item(let base, let key): try all([base, key], soft: soft)
        case .slice(let start, let stop, let step): try all([start, stop, step].compactMap { $0 }, soft: soft)
        case .call(let callee, let a):
            try check(callee, soft: soft)
            try arguments(a)
        case .filter(let base, let name, let a):
            if !soft && !JinjaFilters.jinjaBuiltins.contains(name) {
                throw ChatTemplateError(.syntax, "No filter named '\(name)'.", at: expression.location)
            }
            try check(base, soft: soft)
            try arguments(a)
        case .test(let base, let name, let a):
            if !soft && !JinjaTestFunctions.jinjaBuiltins.contains(name) {
                throw ChatTemplateError(.syntax, "No test named '\(name)'.", at: expression.location)
            }
            try check(base, soft: soft)
            try arguments(a)
        case .binary(_, let left, let right), .and(let left, let right), .or(let left, let right):
            try all([left, right], soft: soft)
        case .compare(let first, let operations): try all([first] + operations.map(\.operand), soft: soft)
        case .conditional(let test, let value, let otherwise):
            try all([test, value] + (otherwise.map { [$0] } ?? []), soft: true)
        }
    }
}
