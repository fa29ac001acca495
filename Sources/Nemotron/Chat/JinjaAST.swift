/// The parsed template: Jinja's node types, limited to what the renderer supports. Every node
/// keeps the source position its errors are reported at.
struct Expression: Sendable {
    let kind: Kind
    let location: SourceLocation

    indirect enum Kind: Sendable {
        case constant(JinjaValue)
        case name(String)
        case list([Expression])
        case tuple([Expression])
        case dict([(key: Expression, value: Expression)])
        case attribute(Expression, String)
        case item(Expression, Expression)
        /// `start:stop:step`, only as the argument of `item`.
        case slice(start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, arguments: Arguments)
        case filter(Expression, name: String, arguments: Arguments)
        case test(Expression, name: String, arguments: Arguments)
        case not(Expression)
        case negate(Expression)
        case plus(Expression)
        case binary(BinaryOperator, Expression, Expression)
        /// `a ~ b ~ c`
        case concat([Expression])
        /// `a < b == c`: chained as in Python.
        case compare(Expression, [(op: CompareOperator, operand: Expression)])
        case and(Expression, Expression)
        case or(Expression, Expression)
        /// `value if test else otherwise`; without `else` a false test gives undefined.
        case conditional(test: Expression, value: Expression, otherwise: Expression?)
    }
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%", power = "**"
}

enum CompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case isIn = "in", notIn = "not in"
}

struct Arguments: Sendable {
    var positional: [Expression] = []
    var keyword: [(name: String, value: Expression)] = []
}

/// The left side of `{% set %}` and the variables of `{% for %}`.
indirect enum AssignTarget: Sendable {
    case name(String)
    /// `{% set ns.attribute = ... %}`
    case namespaceAttribute(namespace: String, attribute: String)
    case tuple([AssignTarget])
}

indirect enum Statement: Sendable {
    case text(String)
    case output(Expression)
    case forLoop(ForLoop)
    case conditional(branches: [(test: Expression, body: [Statement])], otherwise: [Statement])
    case assign(AssignTarget, Expression, SourceLocation)
    /// `{% set x %}...{% endset %}`
    case assignBlock(AssignTarget, Frame, SourceLocation)
    case macro(name: String, parameters: [(name: String, defaultValue: Expression?)], body: Frame)
    case loopBreak(SourceLocation)
    case loopContinue(SourceLocation)
    /// `{% generation %}...{% endgeneration %}` (transformers' assistant-mask tag): renders its body.
    case generation(Frame)
}

/// Statements that run in a scope of their own: the template, a `for` body or `else`, a macro,
/// a `{% set %}` block. `undefinedAtEntry` lists the names Jinja's compiler makes local and
/// undefined when the scope starts (see `JinjaScoping`), hiding any outer value.
struct Frame: Sendable {
    var statements: [Statement]
    var undefinedAtEntry: [String] = []
}

struct ForLoop: Sendable {
    let target: AssignTarget
    let iterable: Expression
    /// `{% for x in xs if test %}`
    let filter: Expression?
    var body: Frame
    var otherwise: Frame
    let location: SourceLocation
}
