import Foundation
import Testing

@testable import Nemotron

/// Inputs the libFuzzer targets (`scripts/fuzz.sh`) found crashing or leaking, kept in
/// Fixtures/fuzz/TARGET/ and replayed here through the same entry points: each must now give
/// a clean error or a result.
@Suite("Reliability: fuzzer findings stay fixed")
struct FuzzFindingsTests {
    static func inputs(_ target: String) throws -> [URL] {
        let directory = Fixture.root.appendingPathComponent("fuzz").appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .sorted { $0.path < $1.path }
    }

    /// A mapping key that is itself a list made Yams force-unwrap nil; deep nesting would
    /// overflow its recursive reader.
    @Test("run configs that crashed Yams are refused as invalid YAML")
    func runConfig() throws {
        let found = try Self.inputs("runconfig")
        #expect(!found.isEmpty)
        for url in found {
            let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
            var config = RunConfig()
            let error = try #require(throws: NemotronError.self) { try config.apply(yaml: text, path: url.path) }
            #expect("\(error)".contains("invalid YAML: a key that is not a plain value"), "\(error)")
        }
        for text in [String(repeating: "[", count: 100_000), "a: " + String(repeating: "- ", count: 100_000) + "1"] {
            var config = RunConfig()
            let error = try #require(throws: NemotronError.self) { try config.apply(yaml: text, path: "deep.yaml") }
            #expect("\(error)" == "deep.yaml: cannot read: invalid YAML: nesting deeper than 64 levels")
        }
    }

    /// A negative `intermediate_size` in a config without MLP layers reached the shard plan,
    /// which trapped splitting it.
    @Test("configs that trapped the shard plan are refused, naming the key")
    func config() throws {
        let found = try Self.inputs("config")
        #expect(!found.isEmpty)
        for url in found {
            let json = try #require(try JSONParser.parse(try Data(contentsOf: url), path: url.path) as? [String: Any])
            let error = try #require(throws: NemotronError.self) {
                try ModelConfig(json: JSONObject(values: json, path: url.path))
            }
            #expect("\(error)".contains("key 'intermediate_size' has value -28; expected an integer in 0...16777216"))
        }
    }

    /// A macro kept the scope it was defined in, which held the macro: every render of a
    /// template with a macro leaked its scopes (LeakSanitizer's report). Rendering still works
    /// once those scopes are emptied at the end of the render.
    /// A namespace holding itself made `repr` recurse until the stack overflowed; Python prints
    /// the recurring one as `<Namespace {...}>` (jinja2's output, checked).
    @Test("a namespace that holds itself prints as Python prints it")
    func namespaceCycle() throws {
        let url = Fixture.root.appendingPathComponent("fuzz/chat/stack-overflow-namespace-cycle.jinja")
        let source = String(decoding: try Data(contentsOf: url), as: UTF8.self) + "{{ stats }}|{{ [stats] }}"
        let template = try ChatTemplate(source: source)
        let rendered = try template.render(messages: [.dict([("role", "user"), ("content", "Hi")])])
        #expect(rendered == "<Namespace {'w': <Namespace {...}>}>|[<Namespace {'w': <Namespace {...}>}>]")
    }

    @Test("templates with macros render, and repeatedly, without keeping their scopes")
    func chatMacros() throws {
        for url in try Self.inputs("chat") where url.lastPathComponent.hasPrefix("leak") {
            let template = try ChatTemplate(source: String(decoding: try Data(contentsOf: url), as: UTF8.self))
            let messages: [JinjaValue] = [
                .dict([("role", "system"), ("content", "Be brief.")]), .dict([("role", "user"), ("content", "Hi")]),
            ]
            let first = try template.render(messages: messages)
            #expect(first.contains("1SYSTEM") && first.hasSuffix("3"), "\(first)")
            #expect(try template.render(messages: messages) == first)
        }
    }
}
