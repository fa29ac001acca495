/// The parsed template: Jinja's node types, limited to what the renderer supports. Every node
/// keeps the source position its errors are reported at.
struct JinjaExpression: Sendable {
    let kind: Kind
    let location: JinjaSourceLocation

    indirect enum Kind: Sendable {
        case constant(JinjaValue)
        case name(String)
        case list([JinjaExpression])
        case tuple([JinjaExpression])
        case dict([(key: JinjaExpression, value: JinjaExpression)])
        case attribute(JinjaExpression, String)
        case item(JinjaExpression, JinjaExpression)
        /// `start:stop:step`, only as the argument of `item`.
        case slice(start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?)
        case call(JinjaExpression, arguments: JinjaCallArguments)
        case filter(JinjaExpression, name: String, arguments: JinjaCallArguments)
        case test(JinjaExpression, name: String, arguments: JinjaCallArguments)
        case not(JinjaExpression)
        case negate(JinjaExpression)
        case plus(JinjaExpression)
        case binary(JinjaBinaryOperator, JinjaExpression, JinjaExpression)
        /// `a ~ b ~ c`
        case concat([JinjaExpression])
        /// `a < b == c`: chained as in Python.
        case compare(JinjaExpression, [(op: JinjaCompareOperator, operand: JinjaExpression)])
        case and(JinjaExpression, JinjaExpression)
        case or(JinjaExpression, JinjaExpression)
        /// `value if test else otherwise`; without `else` a false test gives undefined.
        case conditional(test: JinjaExpression, value: JinjaExpression, otherwise: JinjaExpression?)
    }
}

enum JinjaBinaryOperator: String, Sendable {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case floorDivide = "//"
    case modulo = "%"
    case power = "**"
}

enum JinjaCompareOperator: String, Sendable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case isIn = "in"
    case notIn = "not in"
}

struct JinjaCallArguments: Sendable {
    var positional: [JinjaExpression] = []
    var keyword: [(name: String, value: JinjaExpression)] = []
}

/// The left side of `{% set %}` and the variables of `{% for %}`.
indirect enum JinjaAssignTarget: Sendable {
    case name(String)
    /// `{% set ns.attribute = ... %}`
    case namespaceAttribute(namespace: String, attribute: String)
    case tuple([JinjaAssignTarget])
}

indirect enum JinjaStatement: Sendable {
    case text(String)
    case output(JinjaExpression)
    case forLoop(JinjaForLoop)
    case conditional(branches: [(test: JinjaExpression, body: [JinjaStatement])], otherwise: [JinjaStatement])
    case assign(JinjaAssignTarget, JinjaExpression, JinjaSourceLocation)
    /// `{% set x %}...{% endset %}`
    case assignBlock(JinjaAssignTarget, JinjaFrame, JinjaSourceLocation)
    case macro(name: String, parameters: [(name: String, defaultValue: JinjaExpression?)], body: JinjaFrame)
    case loopBreak(JinjaSourceLocation)
    case loopContinue(JinjaSourceLocation)
    /// `{% generation %}...{% endgeneration %}` (transformers' assistant-mask tag): renders its body.
    case generation(JinjaFrame)
}

/// Statements that run in a scope of their own: the template, a `for` body or `else`, a macro,
/// a `{% set %}` block. `undefinedAtEntry` lists the names Jinja's compiler makes local and
/// undefined when the scope starts (see `JinjaScoping`), hiding any outer value.
struct JinjaFrame: Sendable {
    var statements: [JinjaStatement]
    var undefinedAtEntry: [String] = []
}

struct JinjaForLoop: Sendable {
    let target: JinjaAssignTarget
    let iterable: JinjaExpression
    /// `{% for x in xs if test %}`
    let filter: JinjaExpression?
    var body: JinjaFrame
    var otherwise: JinjaFrame
    let location: JinjaSourceLocation
}
