/// Every chat-template failure: a template that does not parse or uses a construct this renderer
/// does not support, a render that fails (as Jinja would fail, or where Jinja would print
/// something we do not reproduce), `raise_exception(...)` from the template itself, and missing
/// or malformed template files. Template errors carry the 1-based line and column.
public struct ChatTemplateError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The template is not valid Jinja.
        case syntax
        /// Valid Jinja that this renderer does not implement (it never guesses).
        case unsupported
        /// Rendering failed as Jinja's would (undefined value, type error, ...).
        case render
        /// The template called `raise_exception(message)`; `message` is its argument.
        case raised
        /// No template, or a template file or key that cannot be used.
        case configuration
        /// Messages, tools or keyword arguments the template cannot be given.
        case input
    }

    public let kind: Kind
    public let message: String
    /// Where the template came from (file and key), when known.
    public var origin: String?
    public let line: Int?
    public let column: Int?

    init(_ kind: Kind, _ message: String, line: Int? = nil, column: Int? = nil, origin: String? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
        self.origin = origin
    }

    init(_ kind: Kind, _ message: String, at location: JinjaSourceLocation, origin: String? = nil) {
        self.init(kind, message, line: location.line, column: location.column, origin: origin)
    }

    public var description: String {
        var place = origin ?? "chat template"
        if let line, let column { place += ", line \(line), column \(column)" }
        switch kind {
        case .raised: return "\(place): the template raised an exception: \(message)"
        case .unsupported: return "\(place): unsupported by nemotron-run's Jinja renderer: \(message)"
        case .configuration, .input: return "\(place): \(message)"
        case .syntax, .render: return "\(place): \(message)"
        }
    }
}

/// A 1-based position in the template source (after Jinja's newline normalisation).
struct JinjaSourceLocation: Sendable, Equatable {
    let line: Int
    let column: Int
}

/// A failure raised while evaluating a value, before the renderer knows the position: the
/// renderer turns it into a `ChatTemplateError` at the expression being evaluated.
struct JinjaFailure: Error {
    enum Kind { case render, unsupported, raised }
    let kind: Kind
    let message: String

    static func render(_ message: String) -> JinjaFailure { JinjaFailure(kind: .render, message: message) }
    static func unsupported(_ message: String) -> JinjaFailure { JinjaFailure(kind: .unsupported, message: message) }
}
