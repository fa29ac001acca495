import Foundation
import Testing

@testable import Nemotron

/// Parity with `transformers`' `apply_chat_template` on the templates, conversations and keyword
/// arguments of scripts/make-chat-fixtures.py: the rendered text byte for byte, the error where
/// transformers raised, and the token ids of the rendered text.
@Suite("Chat templates render as transformers renders them")
struct ChatTemplateParityTests {
    static let directory = Fixture.root.appendingPathComponent("chat")
    static let templateNames = [
        "nano2-style", "nemotron3-style", "plain-lines", "python-values", "strict-turns",
        "tool-schemas", "chatml-minimal",
    ]

    struct Case {
        let template: String
        let tokenizer: String
        let conversation: String
        let addGenerationPrompt: Bool
        let kwargs: [String: JinjaValue]
        let text: String?
        let ids: [Int]?
        let errorType: String?
        let error: String?

        var label: String { "\(template) × \(conversation) agp=\(addGenerationPrompt) kwargs=\(kwargs.keys.sorted())" }
    }

    static func jsonLines(_ name: String) throws -> [JinjaValue] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        return try text.split(separator: "\n").map { try JinjaValue(json: String($0)) }
    }

    static func cases() throws -> [Case] {
        try jsonLines("cases.jsonl").map { line in
            Case(
                template: try #require(line["template"]?.stringValue),
                tokenizer: try #require(line["tokenizer"]?.stringValue),
                conversation: try #require(line["conversation"]?.stringValue),
                addGenerationPrompt: try #require(line["add_generation_prompt"]?.boolValue),
                kwargs: Dictionary(
                    uniqueKeysWithValues: try #require(line["kwargs"]?.dictValue).map { ($0.key, $0.value) }),
                text: line["text"]?.stringValue,
                ids: try line["ids"]?.listValue.map {
                    try $0.map { value in
                        guard case .int(let id) = value.storage else { throw ChatTemplateError(.input, "bad id") }
                        return id
                    }
                },
                errorType: line["error_type"]?.stringValue, error: line["error"]?.stringValue)
        }
    }

    static func conversations() throws -> [String: JinjaValue] {
        let text = try String(contentsOf: directory.appendingPathComponent("conversations.json"), encoding: .utf8)
        let all = try #require(try JinjaValue(json: text).dictValue)
        return Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0.value) })
    }

    /// The template a case runs: the checkpoint's own for the two tokenizer fixtures (loaded as
    /// a checkpoint directory), else the template file with that tokenizer's special tokens.
    static func template(_ name: String, tokenizer: String) throws -> ChatTemplate {
        let checkpoint = try ChatTemplate.load(directory: directory.appendingPathComponent(tokenizer))
        let file = directory.appendingPathComponent("templates/\(name).jinja")
        let source = try String(contentsOf: file, encoding: .utf8)
        if (name, tokenizer) == ("nano2-style", "nano2-tokenizer")
            || (name, tokenizer) == ("nemotron3-style", "nemotron3-tokenizer")
        {
            #expect(checkpoint.source == source)
            return checkpoint
        }
        return try ChatTemplate(source: source, specialTokens: checkpoint.specialTokens, origin: file.path)
    }

    static func render(_ c: Case, _ template: ChatTemplate, _ conversation: JinjaValue) throws -> String {
        try template.render(
            messages: try #require(conversation["messages"]?.listValue),
            tools: conversation["tools"]?.listValue, documents: conversation["documents"]?.listValue,
            addGenerationPrompt: c.addGenerationPrompt, kwargs: c.kwargs)
    }

    @Test("fixtures cover at least 6 templates and 40 conversations")
    func coverage() throws {
        let cases = try Self.cases()
        #expect(Set(cases.map(\.template)).count >= 6)
        #expect(try Self.conversations().count >= 40)
        #expect(cases.count >= 6 * 40 * 2)
    }

    @Test("byte-identical text, or the same raised error, on every case", arguments: templateNames)
    func parity(name: String) throws {
        let conversations = try Self.conversations()
        let cases = try Self.cases().filter { $0.template == name }
        #expect(!cases.isEmpty)
        var templates: [String: ChatTemplate] = [:]
        var failures = 0
        for c in cases {
            let template = try templates[c.tokenizer] ?? Self.template(name, tokenizer: c.tokenizer)
            templates[c.tokenizer] = template
            let conversation = try #require(conversations[c.conversation])
            do {
                let text = try Self.render(c, template, conversation)
                if !Array(text.utf8).elementsEqual((c.text ?? "").utf8) || c.text == nil {
                    failures += 1
                    #expect(
                        Array(text.unicodeScalars)
                            == Array((c.text ?? "(transformers raised \(c.error ?? ""))").unicodeScalars),
                        "\(c.label)")
                }
            } catch let error as ChatTemplateError {
                let expected =
                    c.errorType == "raised"
                    ? error.kind == .raised && error.message == c.error
                    : c.errorType == "render" && error.kind == .render
                if !expected { failures += 1 }
                #expect(expected, "\(c.label): \(error) (transformers: \(c.errorType ?? "no error") \(c.error ?? ""))")
            }
        }
        #expect(failures == 0, "\(failures) of \(cases.count) cases differ")
    }

    @Test("token ids equal apply_chat_template(tokenize=True)", arguments: ["nano2-tokenizer", "nemotron3-tokenizer"])
    func ids(tokenizerName: String) throws {
        let tokenizer = try Tokenizer(directory: Self.directory.appendingPathComponent(tokenizerName))
        let cases = try Self.cases().filter { $0.tokenizer == tokenizerName && $0.ids != nil }
        #expect(cases.count > 100)
        var mismatches = 0
        for c in cases where tokenizer.encode(c.text ?? "") != c.ids {
            mismatches += 1
            #expect(tokenizer.encode(c.text ?? "") == c.ids, "\(c.label)")
        }
        #expect(mismatches == 0)
    }
}

/// Small templates that probe Jinja's and Python's semantics one construct at a time
/// (expressions.jsonl, rendered by transformers' jinja2 environment).
@Suite("Jinja semantics match jinja2")
struct ChatJinjaSemanticsTests {
    @Test("every probe renders as jinja2, fails where it fails, and refuses what is unsupported")
    func probes() throws {
        let probes = try ChatTemplateParityTests.jsonLines("expressions.jsonl")
        #expect(probes.count >= 100)
        for probe in probes {
            let source = try #require(probe["template"]?.stringValue)
            let context = Dictionary(
                uniqueKeysWithValues: try #require(probe["context"]?.dictValue).map { ($0.key, $0.value) })
            let result = Result { try JinjaTemplate(source: source).render(context) }
            switch result {
            case .success(let text):
                #expect(
                    probe["unsupported"] == nil && probe["error"] == nil,
                    "\(source.debugDescription) rendered \(text.debugDescription)")
                if let expected = probe["text"]?.stringValue {
                    #expect(Array(text.unicodeScalars) == Array(expected.unicodeScalars), "\(source.debugDescription)")
                }
            case .failure(let error):
                let failure = try #require(error as? ChatTemplateError)
                if probe["unsupported"] != nil {
                    #expect(failure.kind == .unsupported, "\(source.debugDescription): \(failure)")
                } else if probe["error_type"]?.stringValue == "raised" {
                    #expect(failure.kind == .raised && failure.message == probe["error"]?.stringValue, "\(failure)")
                } else {
                    #expect(probe["error"] != nil, "\(source.debugDescription) failed: \(failure)")
                }
                #expect(failure.line != nil && failure.column != nil, "\(failure)")
            }
        }
    }
}
