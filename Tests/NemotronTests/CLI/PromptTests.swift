import Foundation
import Testing

@testable import Nemotron

extension ProcessSuites {
    /// Text in, text out on the tiny checkpoint shipped in models/tiny (with its tokenizer).
    @Suite("Prompts, batches, streaming and stop strings", .serialized)
    struct PromptTests {
        static let model = Fixture.root.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("models/tiny")
        static let prompts = [
            "The quick brown fox", "Hi", "Nemotron-H mixes Mamba2 layers with attention and experts.", "日本語",
            "a b c d e f g h i j k l m n o p", "😀 emoji",
        ]

        func run(ranks: Int, _ arguments: [String]) throws -> CLI.Output {
            ranks == 1 ? try CLI.run(arguments) : try ProcessSuites.TensorParallelTests.run(ranks: ranks, arguments)
        }

        func records(_ output: CLI.Output) throws -> [[String: Any]] {
            try output.stdout.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }

        @Test("a batch gives every prompt the ids it gets alone; requests stop on their own", arguments: [1, 2])
        func batch(ranks: Int) throws {
            let directory = try TemporaryDirectory()
            let file = directory.file("prompts.jsonl")
            let lines =
                Self.prompts.map { "{\"prompt\": \(JSONLines.encodeForTests($0))}" } + ["{\"tokens\": [5, 6, 7]}"]
            try lines.joined(separator: "\n").write(to: file, atomically: false, encoding: .utf8)
            // Exact f32 products: with bf16 activations (compute_dtype auto on bf16 weights) a
            // prompt's numerics depend on how many tokens share its matrix products.
            let common = [
                "generate", "--model", Self.model.path, "--temperature", "0", "--json", "--compute-dtype", "f32",
            ]
            let batch = try run(ranks: ranks, common + ["--prompt-file", file.path, "--max-new-tokens", "12"])
            #expect(batch.status == 0, "\(batch.stderr)")
            #expect(
                !batch.stderr.contains("generating") && !batch.stderr.contains("loading"),
                "no progress bar when stderr is not a terminal")
            let results = try records(batch)
            #expect(results.count == Self.prompts.count + 1)
            for (index, prompt) in Self.prompts.enumerated() {
                #expect(results[index]["prompt"] as? String == prompt, "input order")
                let alone = try records(try run(ranks: ranks, common + ["--prompt", prompt, "--max-new-tokens", "12"]))
                #expect(
                    alone.first?["generated_ids"] as? [Int] == results[index]["generated_ids"] as? [Int], "\(prompt)")
                #expect(alone.first?["text"] as? String == results[index]["text"] as? String)
            }
            #expect(results.last?["prompt_ids"] as? [Int] == [5, 6, 7])
            #expect(results.last?["text"] is String)
        }

        @Test("the streamed text equals the final text")
        func streaming() throws {
            let arguments = [
                "generate", "--model", Self.model.path, "--prompt", "日本語のテキスト 😀", "--max-new-tokens", "30",
                "--temperature", "0.9", "--seed", "3",
            ]
            let streamed = try CLI.run(arguments)
            let json = try records(try CLI.run(arguments + ["--json"]))
            #expect(streamed.status == 0, "\(streamed.stderr)")
            #expect(streamed.stdout == (json.first?["text"] as? String ?? "") + "\n")
            let tokenizer = try Tokenizer(directory: Self.model)
            let ids = try #require(json.first?["generated_ids"] as? [Int])
            // This run's tokens split multi-byte characters; the stream must still match.
            #expect(ids.contains { tokenizer.bytes([$0]).contains { $0 >= 0x80 } })
        }

        @Test("stop strings end a request and are not printed")
        func stopStrings() throws {
            let arguments = [
                "generate", "--model", Self.model.path, "--prompt", "The quick brown fox", "--max-new-tokens", "16",
                "--temperature", "0", "--json",
            ]
            let full = try #require(try records(try CLI.run(arguments)).first?["text"] as? String)
            let characters = Array(full)
            let stop = String(characters[characters.count / 2..<characters.count / 2 + 2])
            let stopped = try #require(try records(try CLI.run(arguments + ["--stop", stop])).first)
            #expect(stopped["finish_reason"] as? String == "stop")
            let text = try #require(stopped["text"] as? String)
            #expect(!text.contains(stop) && full.hasPrefix(text))
            #expect((stopped["generated_ids"] as? [Int] ?? []).count < 16)
            let streamed = try CLI.run(Array(arguments.dropLast()) + ["--stop", stop])
            #expect(streamed.stdout == text + "\n")
        }

        @Test("--chat without a chat template, and text prompts without a tokenizer, fail clearly")
        func refusals() throws {
            let chat = try CLI.run(["generate", "--model", Self.model.path, "--prompt", "hi", "--chat"])
            #expect(
                chat.status != 0
                    && chat.stderr.contains(
                        "tokenizer_config.json has no 'chat_template' key and there is no chat_template.jinja"),
                "\(chat.stderr)")
            let noTokenizer = try CLI.run(["generate", "--model", Fixture.all[0].directory.path, "--prompt", "hi"])
            #expect(noTokenizer.status != 0 && noTokenizer.stderr.contains("tokenizer.json: not found"))
        }

        @Test("tokenize and detokenize mirror tokenizers' encode and decode")
        func tokenizeCommands() throws {
            let directory = try TemporaryDirectory()
            let input = directory.file("in.jsonl")
            try ["\"Hello, world!\"", "\"日本語 😀\"", "\"<|eot_id|> tail\""].joined(separator: "\n").write(
                to: input, atomically: false, encoding: .utf8)
            let tokenizer = try Tokenizer(directory: Self.model)
            let encoded = try CLI.run(["tokenize", "--model", Self.model.path, "--jsonl", input.path])
            let ids = try encoded.stdout.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [Int])
            }
            #expect(ids == ["Hello, world!", "日本語 😀", "<|eot_id|> tail"].map(tokenizer.encode))
            let idsFile = directory.file("ids.jsonl")
            try encoded.stdout.write(to: idsFile, atomically: false, encoding: .utf8)
            let decoded = try CLI.run(["detokenize", "--model", Self.model.path, "--jsonl", idsFile.path])
            #expect(
                decoded.stdout.split(separator: "\n").map {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8), options: .fragmentsAllowed) as? String
                }
                    == ["Hello, world!", "日本語 😀", "<|eot_id|> tail"])
        }
    }
}

enum JSONLines {
    static func encodeForTests(_ text: String) -> String {
        String(
            decoding: (try? JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed)) ?? Data(),
            as: UTF8.self)
    }
}
