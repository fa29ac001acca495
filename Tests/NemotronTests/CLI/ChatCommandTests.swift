import Foundation
import Testing

@testable import Nemotron

extension ProcessSuites {
    /// `generate --chat`: prompts rendered through the checkpoint's template and tokenized without
    /// special tokens, as `apply_chat_template(..., tokenize=True)` does. The renderer's parity with
    /// jinja2 is tested on its own fixtures (Tests/NemotronTests/Chat); here the command's wiring.
    @Suite("generate --chat", .serialized)
    struct ChatCommandTests {
        static let model = Fixture.root.appendingPathComponent("replicas/nemotron-3")

        /// What the command must feed the model for `messages`, computed with the library.
        func expectedIds(_ messages: [JinjaValue], kwargs: [String: JinjaValue] = [:]) throws -> [Int] {
            let template = try ChatTemplate.load(directory: Self.model)
            let text = try template.render(messages: messages, addGenerationPrompt: true, kwargs: kwargs)
            return try Tokenizer(directory: Self.model).encode(text, addSpecialTokens: false)
        }

        func promptIds(_ arguments: [String]) throws -> [Int] {
            let run = try CLI.run(
                ["generate", "--model", Self.model.path, "--chat", "--max-new-tokens", "2", "--json"] + arguments)
            #expect(run.status == 0, "\(run.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            return try #require(json?["prompt_ids"] as? [Int])
        }

        @Test("a user turn, with and without a system turn and template keyword arguments")
        func userTurn() throws {
            let user: JinjaValue = .dict([("role", "user"), ("content", "Héllo, wörld")])
            #expect(try promptIds(["--prompt", "Héllo, wörld"]) == (try expectedIds([user])))
            let system: JinjaValue = .dict([("role", "system"), ("content", "Be brief.")])
            #expect(
                try promptIds([
                    "--prompt", "Héllo, wörld", "--system", "Be brief.", "--chat-template-kwargs",
                    #"{"enable_thinking": false}"#,
                ]) == (try expectedIds([system, user], kwargs: ["enable_thinking": false])))
        }

        @Test("a conversation from --messages, and the same keys in a config file")
        func messagesFile() throws {
            let directory = try TemporaryDirectory()
            let conversation = #"""
                [{"role": "system", "content": "You answer in one word."},
                 {"role": "user", "content": "Capital of France?"},
                 {"role": "assistant", "content": "<think>Easy.</think>Paris"},
                 {"role": "user", "content": "And of 日本?"}]
                """#
            try conversation.write(to: directory.file("chat.json"), atomically: false, encoding: .utf8)
            let expected = try expectedIds(ChatTemplate.messages(fromJSON: conversation, source: "test"))
            #expect(try promptIds(["--messages", directory.file("chat.json").path]) == expected)
            let config = directory.file("run.yaml")
            try "model: \(Self.model.path)\nchat: true\nmessages: chat.json\n".write(
                to: config, atomically: false, encoding: .utf8)
            let run = try CLI.run(["generate", "--config", config.path, "--max-new-tokens", "1", "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            #expect(json?["prompt_ids"] as? [Int] == expected)
        }

        @Test(
            "bad conversations and a checkpoint without a template fail clearly",
            arguments: [
                (#"{"role": "user", "content": "hi"}"#, "expected a JSON list of messages"),
                (#"[{"role": "wizard", "content": "hi"}]"#, "has the unknown role 'wizard'"),
                (#"[{"role": "user"}]"#, "has no 'content'"),
            ])
        func badMessages(text: String, message: String) throws {
            let directory = try TemporaryDirectory()
            try text.write(to: directory.file("chat.json"), atomically: false, encoding: .utf8)
            let run = try CLI.run([
                "generate", "--model", Self.model.path, "--chat", "--messages", directory.file("chat.json").path,
            ])
            #expect(run.status != 0 && run.stderr.contains("error: ") && run.stderr.contains(message), "\(run.stderr)")
            #expect(run.stdout.isEmpty)
        }

        @Test("--chat on a checkpoint with no chat template anywhere")
        func noTemplate() throws {
            let model = Fixture.root.appendingPathComponent("replicas/nemotron-h-8b")
            let run = try CLI.run(["generate", "--model", model.path, "--chat", "--prompt", "hi"])
            #expect(run.status != 0 && run.stderr.contains("chat_template"), "\(run.stderr)")
        }
    }
}
