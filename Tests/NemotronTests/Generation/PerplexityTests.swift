import Foundation
import Testing

@testable import Nemotron

@Suite("Perplexity windows")
struct PerplexityWindowTests {
    @Test("every token after the first is scored once, with at most context − 1 tokens in view")
    func coverage() {
        for (count, context, stride) in [
            (175, 64, 32), (175, 48, 17), (175, 40, 40), (10, 512, 256), (2, 2, 1), (100, 7, 3),
        ] {
            let windows = PerplexityWindow.windows(count: count, context: context, stride: stride)
            let scored = windows.flatMap { Array($0.targets) }
            let skipped = stride == context ? windows.count - 1 : 0
            #expect(scored.count == count - 1 - skipped && Set(scored).count == scored.count && !scored.contains(0))
            #expect(windows.allSatisfy { $0.tokens.count <= context && $0.targets.lowerBound > $0.tokens.lowerBound })
            #expect(windows.last?.tokens.upperBound == count)
        }
    }
}

extension ProcessSuites {
    /// The `perplexity` command against transformers (scripts/make-perplexity-reference.py) on
    /// the dense fixture's weights with a small tokenizer, at tp 1, 2 and 4 and under attention DP.
    @Suite("perplexity command", .serialized)
    struct PerplexityCommandTests {
        static let fixture = Fixture.root.appendingPathComponent("perplexity")

        struct Case: Decodable {
            let context: Int
            let stride: Int
            let tokens_scored: Int
            let perplexity: Double
        }

        /// A checkpoint directory: the dense fixture's config and weights, this fixture's tokenizer.
        func checkpoint(in directory: TemporaryDirectory) throws -> URL {
            let url = directory.file("model")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            for name in ["config.json", "generation_config.json", "model.safetensors"] {
                try FileManager.default.createSymbolicLink(
                    at: url.appendingPathComponent(name),
                    withDestinationURL: Fixture.all[0].directory.appendingPathComponent(name))
            }
            for name in ["tokenizer.json", "tokenizer_config.json"] {
                try FileManager.default.copyItem(
                    at: Self.fixture.appendingPathComponent(name), to: url.appendingPathComponent(name))
            }
            return url
        }

        func perplexity(_ model: URL, ranks: Int, _ extra: [String]) throws -> [String: Any] {
            let arguments =
                [
                    "perplexity", "--model", model.path, "--text-file",
                    Self.fixture.appendingPathComponent("text.txt").path, "--json",
                ]
                + extra
            let run =
                ranks == 1
                ? try CLI.run(arguments + ["--threads", "1"])
                : try ProcessSuites.TensorParallelTests.run(ranks: ranks, arguments)
            #expect(run.status == 0, "\(run.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        }

        @Test("equals transformers by the same protocol", arguments: [(1, false), (2, false), (4, false), (2, true)])
        func matchesReference(ranks: Int, dataParallel: Bool) throws {
            let directory = try TemporaryDirectory()
            let model = try checkpoint(in: directory)
            let reference = try JSONDecoder().decode(
                [String: [Case]].self,
                from: Data(contentsOf: Self.fixture.appendingPathComponent("reference.json")).dropJSONModel())
            for item in try #require(reference["cases"]) {
                let json = try perplexity(
                    model, ranks: ranks,
                    ["--context", "\(item.context)", "--stride", "\(item.stride)", "--compute-dtype", "f32"]
                        + (dataParallel ? ["--attention-dp"] : []))
                #expect(json["tokens_scored"] as? Int == item.tokens_scored)
                let value = try #require(json["perplexity"] as? Double)
                #expect(
                    abs(value - item.perplexity) / item.perplexity <= 1e-4, "\(item.context)/\(item.stride): \(value)")
                #expect((json["peak_resident_bytes_per_rank"] as? [Int])?.count == ranks)
            }
        }

        @Test(
            "bad inputs fail clearly",
            arguments: [
                (["--context", "1"], "--context = 1 is invalid"),
                (["--context", "8", "--stride", "9"], "--stride = 9 is invalid"),
            ])
        func badArguments(arguments: [String], message: String) throws {
            let directory = try TemporaryDirectory()
            let model = try checkpoint(in: directory)
            let run = try CLI.run(
                [
                    "perplexity", "--model", model.path, "--text-file",
                    Self.fixture.appendingPathComponent("text.txt").path,
                ] + arguments)
            #expect(run.status != 0 && run.stderr.contains(message), "\(run.stderr)")
        }

        @Test("an empty text, and a text of one token, fail clearly")
        func shortTexts() throws {
            let directory = try TemporaryDirectory()
            let model = try checkpoint(in: directory)
            try "".write(to: directory.file("empty.txt"), atomically: false, encoding: .utf8)
            let empty = try CLI.run([
                "perplexity", "--model", model.path, "--text-file", directory.file("empty.txt").path,
            ])
            #expect(empty.status != 0 && empty.stderr.contains("a non-empty text file"), "\(empty.stderr)")
            // Without the post-processor's <s>, "a" is one token: nothing to score.
            let tokenizerURL = model.appendingPathComponent("tokenizer.json")
            var tokenizer = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: tokenizerURL)) as? [String: Any])
            tokenizer["post_processor"] = NSNull()
            try JSONSerialization.data(withJSONObject: tokenizer).write(to: tokenizerURL)
            try "a".write(to: directory.file("one.txt"), atomically: false, encoding: .utf8)
            let one = try CLI.run(["perplexity", "--model", model.path, "--text-file", directory.file("one.txt").path])
            #expect(one.status != 0 && one.stderr.contains("a text of at least 2 tokens"), "\(one.stderr)")
        }
    }
}

extension Data {
    /// reference.json without its "model" string, so it decodes as `[String: [Case]]`.
    fileprivate func dropJSONModel() throws -> Data {
        var object = try JSONSerialization.jsonObject(with: self) as? [String: Any] ?? [:]
        object["model"] = nil
        return try JSONSerialization.data(withJSONObject: object)
    }
}
