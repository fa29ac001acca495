import Foundation
import Yams

extension RunConfig {
    /// Deepest nesting of sequences and mappings a config may have: Yams reads nodes
    /// recursively, so a file of thousands of `[` would overflow the stack.
    static let maxYAMLDepth = 64

    /// A YAML config's value, as `Yams.load` gives it, after checks that keep Yams from
    /// trapping: nesting at most `maxYAMLDepth` deep, and every mapping key a scalar (Yams
    /// force-unwraps keys as strings; `{[1]: 2}` crashed it, found by the runconfig fuzz target).
    static func loadYAML(_ text: String, path: String) throws -> Any? {
        func invalid(_ reason: String) -> NemotronError {
            .fileUnreadable(path: path, reason: "invalid YAML: \(reason)")
        }
        // Every level of nesting costs a `[` or `{` (flow), or a `- `, `? ` or `: ` indicator or
        // a column of indentation (block); their count outside quotes and comments bounds the
        // depth before the recursive reader sees the text.
        var brackets = 0
        var line = 0
        var indenting = true
        var deepest = 0
        var quote: UInt8?
        var comment = false
        var previous = UInt8(ascii: "\n")
        for byte in text.utf8 + [UInt8(ascii: "\n")] {
            let space = byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n")
            if byte == UInt8(ascii: "\n") {
                if quote == nil && !comment
                    && [UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":")].contains(previous)
                {
                    line += 1
                }
                (comment, line, indenting) = (false, 0, true)
            } else if comment {
            } else if let open = quote {
                if byte == open { quote = nil }
            } else {
                if indenting && byte == UInt8(ascii: " ") { line += 1 } else { indenting = false }
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
                case UInt8(ascii: "#") where previous == UInt8(ascii: " ") || previous == UInt8(ascii: "\n"):
                    comment = true
                case UInt8(ascii: "["), UInt8(ascii: "{"): brackets += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"): brackets = max(0, brackets - 1)
                default:
                    if space && [UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":")].contains(previous) {
                        line += 1
                    }
                }
            }
            deepest = max(deepest, brackets + line)
            previous = byte
        }
        guard deepest <= maxYAMLDepth else {
            throw invalid("nesting deeper than \(maxYAMLDepth) levels")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw invalid("\(error)") }
        guard let node else { return nil }
        func check(_ node: Node) throws {
            switch node {
            case .scalar: break
            case .sequence(let items): for item in items { try check(item) }
            case .mapping(let pairs):
                for (key, value) in pairs {
                    guard case .scalar = key else {
                        throw invalid(
                            "a key that is not a plain value (a list or mapping) at line \(key.mark?.line ?? 0)")
                    }
                    try check(value)
                }
            }
        }
        try check(node)
        return node.any
    }
}
