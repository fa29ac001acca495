import Foundation
import Testing

@testable import Nemotron

extension ProcessSuites {
    /// `--attention-dp` under real mpirun: each rank serves its own prompts; MoE experts are split
    /// over the ranks and tokens travel to them. Every prompt must get its single-process tokens.
    @Suite("Attention data parallelism under mpirun", .serialized)
    struct AttentionDataParallelTests {
        /// Prompts of different lengths; the first run has fewer prompts than ranks at -np 4.
        static let prompts: [[Int]] = [
            [5, 9, 200, 31], [77], Array(100..<121), [3, 4, 5, 6, 7, 8, 9, 10, 11], [400, 401],
        ]

        func records(_ output: CLI.Output) throws -> [[String: Any]] {
            try output.stdout.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }

        func generate(_ fixture: Fixture, _ prompts: [[Int]], ranks: Int, logits: URL? = nil, extra: [String] = [])
            throws -> [[String: Any]]
        {
            let directory = try TemporaryDirectory()
            let file = directory.file("prompts.jsonl")
            try prompts.map { "{\"tokens\": [\($0.map(String.init).joined(separator: ","))]}" }.joined(separator: "\n")
                .write(to: file, atomically: false, encoding: .utf8)
            var arguments =
                [
                    "generate", "--model", fixture.directory.path, "--prompt-file", file.path, "--max-new-tokens", "6",
                    "--json",
                ] + extra
            if let logits { arguments += ["--logits-output", logits.path] }
            let run =
                ranks == 1
                ? try CLI.run(arguments)
                : try ProcessSuites.TensorParallelTests.run(ranks: ranks, arguments + ["--attention-dp"])
            #expect(run.status == 0, "\(run.stderr)")
            return try records(run)
        }

        @Test(
            "every prompt gets its single-process ids; idle ranks take part", arguments: [2, 4],
            [Fixture.all[1], Fixture.all[2], Fixture.all[0]])
        func matchesSingleProcess(ranks: Int, fixture: Fixture) throws {
            for (prompts, chunk) in [(Array(Self.prompts.prefix(3)), 512), (Self.prompts, 512), (Self.prompts, 4)] {
                let single = try generate(fixture, prompts, ranks: 1, extra: ["--prefill-chunk", "\(chunk)"])
                let parallel = try generate(fixture, prompts, ranks: ranks, extra: ["--prefill-chunk", "\(chunk)"])
                #expect(parallel.count == prompts.count)
                for (a, b) in zip(single, parallel) {
                    #expect(
                        a["generated_ids"] as? [Int] == b["generated_ids"] as? [Int],
                        "\(fixture) \(prompts.count) prompts")
                    #expect(b["prompt_ids"] as? [Int] == a["prompt_ids"] as? [Int])
                }
            }
        }

        @Test(
            "step logits of the reference prompt match transformers", arguments: [2, 4],
            [Fixture.all[1], Fixture.all[2]])
        func logits(ranks: Int, fixture: Fixture) throws {
            let directory = try TemporaryDirectory()
            let reference = try fixture.reference
            let prompts = [try reference.ints("prompt_ids"), [7, 8, 9]]
            let output = directory.file("steps.safetensors")
            let records = try generate(fixture, prompts, ranks: ranks, logits: output)
            let steps = try Reference(url: output).floats("step_logits")
            let expected = try reference.floats("step_logits")
            #expect(maxAbsDifference(steps, Array(expected.prefix(steps.count))) <= 1e-4)
            #expect(records.first?["generated_ids"] as? [Int] == Array(try reference.ints("greedy_ids").prefix(6)))
            // One prefill: rank 0 runs the prompt, the other ranks take part with no tokens.
            let prefill = directory.file("prefill.safetensors")
            let run = try ProcessSuites.TensorParallelTests.run(
                ranks: ranks,
                [
                    "logits", "--model", fixture.directory.path, "--tokens",
                    prompts[0].map(String.init).joined(separator: ","),
                    "--output", prefill.path, "--attention-dp",
                ])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(
                maxAbsDifference(try Reference(url: prefill).floats("logits"), try reference.floats("prefill_logits"))
                    <= 1e-4)
        }

        @Test("fusion is reported off, and experts must divide over the ranks")
        func rules() throws {
            let inspect = try ProcessSuites.TensorParallelTests.run(
                ranks: 2, ["inspect", "--model", Fixture.all[1].directory.path, "--attention-dp"])
            #expect(
                inspect.stdout.contains(
                    "fuse_allreduce_norm off (disabled by itself: attention data parallelism is on"),
                "\(inspect.stdout)")
            #expect(inspect.stdout.contains("routed experts 4..<8 of 8"))
            let three = try ProcessSuites.TensorParallelTests.run(
                ranks: 3,
                [
                    "generate", "--model", Fixture.all[1].directory.path,
                    "--tokens", "1", "--attention-dp",
                ], timeout: 30)
            #expect(three.status != 0)
            #expect(
                three.stderr.contains("n_routed_experts (8) must be divisible by it; legal process counts: 1, 2, 4, 8"),
                "\(three.stderr)")
        }
    }
}
