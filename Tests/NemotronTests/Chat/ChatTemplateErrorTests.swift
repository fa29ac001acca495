import Foundation
import Testing

@testable import Nemotron

/// Bad templates and bad checkpoint directories: each fails with a clear error that names the
/// template line and column, or the file and key at fault.
@Suite("Chat template errors")
struct ChatTemplateErrorTests {
    static func parseError(_ source: String) throws -> ChatTemplateError {
        do {
            _ = try ChatTemplate(source: source, origin: "test.jinja")
        } catch let error as ChatTemplateError {
            return error
        }
        Issue.record("\(source.debugDescription) parsed")
        throw ChatTemplateError(.syntax, "parsed")
    }

    static func renderError(
        _ source: String, messages: [JinjaValue] = [["role": "user", "content": "hi"]],
        kwargs: [String: JinjaValue] = [:]
    ) throws -> ChatTemplateError {
        let template = try ChatTemplate(source: source, origin: "test.jinja")
        do {
            _ = try template.render(messages: messages, kwargs: kwargs)
        } catch let error as ChatTemplateError {
            return error
        }
        Issue.record("\(source.debugDescription) rendered")
        throw ChatTemplateError(.render, "rendered")
    }

    struct Located: Sendable, CustomStringConvertible {
        let source: String
        let kind: ChatTemplateError.Kind
        let line: Int
        let column: Int
        let mentions: String
        var description: String { mentions }
    }

    static let unsupported: [Located] = [
        Located(
            source: "{% for m in messages %}\n  {% include 'header.jinja' %}\n{% endfor %}", kind: .unsupported,
            line: 2, column: 6, mentions: "'{% include %}' tag"),
        Located(
            source: "{{ bos_token }}\n{% call render() %}x{% endcall %}", kind: .unsupported, line: 2, column: 4,
            mentions: "'{% call %}' tag"),
        Located(
            source: "{% raw %}{{ x }}{% endraw %}", kind: .unsupported, line: 1, column: 4,
            mentions: "'{% raw %}' tag"),
        Located(
            source: "{% for m in messages recursive %}{% endfor %}", kind: .unsupported, line: 1, column: 22,
            mentions: "recursive"),
        Located(source: "{{ f(*args) }}", kind: .unsupported, line: 1, column: 6, mentions: "unpacking"),
        Located(
            source: "{{ 1 }}\n{{ 99999999999999999999 }}", kind: .unsupported, line: 2, column: 4, mentions: "64 bits"),
        Located(
            source: "text\n\n   {{ messages | shuffle }}", kind: .syntax, line: 3, column: 18,
            mentions: "No filter named 'shuffle'"),
        Located(
            source: "{% if x is prime %}{% endif %}{{ y is prime }}", kind: .syntax, line: 1, column: 36,
            mentions: "No test named 'prime'"),
        Located(
            source: "{% for m in messages %}\n{{ m.content }\n{% endfor %}", kind: .syntax, line: 2, column: 14,
            mentions: "unexpected '}'"),
        Located(source: "{% if true %}\nno end", kind: .syntax, line: 2, column: 7, mentions: "'endif'"),
        Located(source: "{% frobnicate %}", kind: .syntax, line: 1, column: 4, mentions: "unknown tag 'frobnicate'"),
        Located(
            source: "a\n{# never closed", kind: .syntax, line: 2, column: 1, mentions: "Missing end of comment tag"),
        Located(source: "{% break %}", kind: .syntax, line: 1, column: 4, mentions: "'break' outside loop"),
    ]

    @Test("unsupported or invalid constructs fail to parse, naming line and column", arguments: unsupported)
    func parseErrors(_ c: Located) throws {
        let error = try Self.parseError(c.source)
        #expect(error.kind == c.kind)
        #expect(error.line == c.line && error.column == c.column, "\(error)")
        #expect(error.description.contains(c.mentions), "\(error)")
        #expect(error.description.contains("test.jinja, line \(c.line), column \(c.column)"), "\(error)")
    }

    @Test("a supported-by-Jinja but unimplemented filter fails where it runs, with its position")
    func unsupportedFilterAtRender() throws {
        let error = try Self.renderError("{%- for m in messages -%}\n{{ m.content | wordwrap(10) }}\n{%- endfor -%}")
        #expect(error.kind == .unsupported)
        #expect(error.line == 2 && error.column == 16, "\(error)")
        #expect(error.description.contains("'wordwrap' filter"))
        // Never reached: Jinja compiles it, and so do we.
        let template = try ChatTemplate(source: "{% if false %}{{ x | wordwrap(3) }}{% endif %}ok")
        #expect(try template.render(messages: [["role": "user", "content": "hi"]]) == "ok")
    }

    @Test("raise_exception fails with the template's message and the call's position")
    func raised() throws {
        let source = """
            {%- for message in messages -%}
                {%- if message.role not in ['user', 'assistant'] -%}
                    {{- raise_exception('Unsupported role: ' ~ message.role) -}}
                {%- endif -%}
            {%- endfor -%}
            """
        let error = try Self.renderError(
            source, messages: [["role": "user", "content": "a"], ["role": "critic", "content": "b"]])
        #expect(error.kind == .raised)
        #expect(error.message == "Unsupported role: critic")
        #expect(error.line == 3 && error.column == 13, "\(error)")
        #expect(error.description.contains("raised an exception: Unsupported role: critic"))
    }

    @Test("render errors name the expression's line and column")
    func renderErrors() throws {
        let undefinedChain = try Self.renderError("{{ messages[0].content }}\n{{ messages[5].content.strip() }}")
        #expect(undefinedChain.kind == .render && undefinedChain.line == 2, "\(undefinedChain)")
        #expect(undefinedChain.message.contains("no element 5"))
        let typeError = try Self.renderError("x\n  {{ 'n=' + messages | length }}")
        #expect(typeError.kind == .render && typeError.line == 2 && typeError.column == 11, "\(typeError)")
        #expect(typeError.message.contains("can only concatenate str (not \"int\") to str"))
        let printedMethod = try Self.renderError("{{ messages[0].items }}")
        #expect(printedMethod.kind == .unsupported, "\(printedMethod)")
    }

    @Test("conversations the template cannot be given are refused")
    func badInput() throws {
        let template = try ChatTemplate(source: "{{ messages | length }}")
        #expect(throws: ChatTemplateError.self) { try template.render(messages: []) }
        #expect(throws: ChatTemplateError.self) { try template.render(messages: ["just text"]) }
        #expect(throws: ChatTemplateError.self) {
            try template.render(messages: [["role": "user", "content": "x"]], kwargs: ["messages": []])
        }
    }

    @Test(
        "--messages and --chat-template-kwargs JSON: a list of role/content objects, an object",
        arguments: [
            (#"{"role": "user", "content": "hi"}"#, "expected a JSON list of messages, got an object"),
            ("[]", "the list of messages is empty"),
            (#"["hi"]"#, "message 1 is a string, not an object"),
            (#"[{"content": "hi"}]"#, "message 1 has no string 'role'"),
            (
                #"[{"role": "user", "content": "a"}, {"role": "critic", "content": "b"}]"#,
                "message 2 has the unknown role 'critic'; expected one of assistant, system, tool, user"
            ),
            (#"[{"role": "user"}]"#, "message 1 (user) has no 'content'"),
            (#"[{"role": "assistant", "content": null}]"#, "message 1 (assistant) has no 'content'"),
            (#"[{"role": "user", "content": "a",}]"#, "invalid JSON"),
        ])
    func badMessages(json: String, mentions: String) throws {
        #expect { try ChatTemplate.messages(fromJSON: json, source: "chat.json") } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("chat.json") && text.contains(mentions)
        }
    }

    @Test("valid --messages and --chat-template-kwargs are read as given")
    func goodInput() throws {
        let messages = try ChatTemplate.messages(
            fromJSON: """
                [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "t"}]},
                 {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
                 {"role": "tool", "content": "r", "tool_call_id": "1"}]
                """, source: "chat.json")
        #expect(messages.count == 4 && messages[2]["tool_calls"]?.listValue?.count == 1)
        let kwargs = try ChatTemplate.keywordArguments(
            fromJSON: #"{"enable_thinking": false, "n": 2}"#, source: "--chat-template-kwargs")
        #expect(kwargs["enable_thinking"]?.boolValue == false && kwargs["n"] == 2)
        #expect(throws: ChatTemplateError.self) { try ChatTemplate.keywordArguments(fromJSON: "[1]", source: "k") }
        #expect(throws: ChatTemplateError.self) {
            try ChatTemplate.keywordArguments(fromJSON: #"{"tools": []}"#, source: "k")
        }
    }

    // MARK: - Loading from a checkpoint directory

    static func write(_ text: String, _ name: String, in directory: TemporaryDirectory) throws {
        let url = directory.file(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    @Test("no template anywhere names tokenizer_config.json, chat_template and chat_template.jinja")
    func noTemplate() throws {
        let directory = try TemporaryDirectory()
        try Self.write(#"{"bos_token": "<s>", "eos_token": "</s>"}"#, "tokenizer_config.json", in: directory)
        do {
            _ = try ChatTemplate.load(directory: directory.url)
            Issue.record("loaded a template from nowhere")
        } catch let error as ChatTemplateError {
            #expect(error.kind == .configuration)
            let text = error.description
            #expect(text.contains("tokenizer_config.json has no 'chat_template' key"), "\(text)")
            #expect(text.contains("chat_template.jinja"), "\(text)")
            #expect(text.contains(directory.url.path), "\(text)")
        }
        let empty = try TemporaryDirectory()
        #expect { try ChatTemplate.load(directory: empty.url) } throws: { error in
            "\(error)".contains("there is no tokenizer_config.json and there is no chat_template.jinja")
        }
    }

    @Test("a malformed chat_template entry names the file and key")
    func badEntry() throws {
        let directory = try TemporaryDirectory()
        try Self.write(#"{"chat_template": 42}"#, "tokenizer_config.json", in: directory)
        #expect { try ChatTemplate.load(directory: directory.url) } throws: { error in
            "\(error)".contains("tokenizer_config.json key 'chat_template'")
        }
        try Self.write(
            #"{"chat_template": [{"name": "tool_use", "template": "T"}]}"#, "tokenizer_config.json", in: directory)
        #expect { try ChatTemplate.load(directory: directory.url) } throws: { error in
            "\(error)".contains("no chat template named 'default'; available: 'tool_use'")
        }
        try Self.write("{\"chat_template\": \"{{ x \"}", "tokenizer_config.json", in: directory)
        #expect { try ChatTemplate.load(directory: directory.url) } throws: { error in
            let text = "\(error)"
            return text.contains("tokenizer_config.json key 'chat_template', line 1, column 6")
                && text.contains("end of template")
        }
    }

    @Test("templates load from a string, a named list, or chat_template.jinja, which wins")
    func loading() throws {
        let directory = try TemporaryDirectory()
        let config = #"""
            {"bos_token": {"__type": "AddedToken", "content": "<s>", "special": true}, "eos_token": "</s>",
             "pad_token": null, "extra_special_tokens": {"image_token": "<image>"},
             "chat_template": [{"name": "default", "template": "D{{ bos_token }}{{ image_token }}"},
                               {"name": "tool_use", "template": "T{{ eos_token }}"}]}
            """#
        try Self.write(config, "tokenizer_config.json", in: directory)
        let hi: [JinjaValue] = [["role": "user", "content": "hi"]]
        let listed = try ChatTemplate.load(directory: directory.url)
        #expect(listed.bosToken == "<s>" && listed.eosToken == "</s>" && listed.specialTokens["pad_token"] == nil)
        #expect(try listed.render(messages: hi) == "D<s><image>")
        #expect(try ChatTemplate.load(directory: directory.url, name: "tool_use").render(messages: hi) == "T</s>")
        #expect(try listed.render(messages: hi, kwargs: ["bos_token": "[BOS]"]) == "D[BOS]<image>")

        try Self.write("J{{ messages[0].content }}\n", "chat_template.jinja", in: directory)
        let file = try ChatTemplate.load(directory: directory.url)
        #expect(try file.render(messages: hi) == "Jhi")
        #expect(file.origin.hasSuffix("chat_template.jinja"))
        #expect(throws: ChatTemplateError.self) { try ChatTemplate.load(directory: directory.url, name: "tool_use") }
        try Self.write("A{{ eos_token }}", "additional_chat_templates/tool_use.jinja", in: directory)
        #expect(try ChatTemplate.load(directory: directory.url, name: "tool_use").render(messages: hi) == "A</s>")

        let plain = try TemporaryDirectory()
        try Self.write(
            #"{"chat_template": "S{{ add_generation_prompt }}{{ tools }}"}"#, "tokenizer_config.json", in: plain)
        try Self.write(#"{"bos_token": "<legacy>"}"#, "special_tokens_map.json", in: plain)
        let legacy = try ChatTemplate.load(directory: plain.url)
        #expect(legacy.bosToken == "<legacy>")
        #expect(try legacy.render(messages: hi, addGenerationPrompt: true) == "STrueNone")
    }

    @Test("messages are normalised as transformers does: null keys dropped, reasoning aliased")
    func messageNormalisation() throws {
        let template = try ChatTemplate(source: "{% for m in messages %}{{ m }}\n{% endfor %}")
        let messages = try JinjaValue(
            json: """
                [{"role": "user", "content": "q", "name": null},
                 {"role": "assistant", "content": "a", "reasoning_content": "because"},
                 {"role": "assistant", "content": null, "thinking": "t", "reasoning": "r"}]
                """)
        let text = try template.render(messages: try #require(messages.listValue))
        #expect(
            text == """
                {'role': 'user', 'content': 'q'}
                {'thinking': 'because', 'role': 'assistant', 'content': 'a', 'reasoning_content': 'because'}
                {'thinking': 't', 'role': 'assistant', 'reasoning': 'r', 'reasoning_content': 't'}

                """)
    }
}
