import Foundation
import Testing

@testable import Nemotron

/// A replica of one of NVIDIA's published checkpoint forms, made by scripts/make-replica-fixtures.py
/// (tiny random weights, the published config, tensor and tokenizer forms), with what transformers
/// and tokenizers produced for it.
struct Replica: CustomStringConvertible, Sendable {
    let name: String

    static let all = ["nemotron-h-8b", "nano-2", "nemotron-3", "nano-2-vl", "resaved-singular"].map(Replica.init)
    static let root = Fixture.root.appendingPathComponent("replicas")

    var description: String { name }
    var directory: URL { Self.root.appendingPathComponent(name) }
    var reference: Reference {
        get throws { try Reference(url: directory.appendingPathComponent("reference.safetensors")) }
    }

    /// expected.json: prompts (text, input_ids), max_new_tokens, parameters, stop_token_ids.
    struct Expected: Decodable {
        struct Prompt: Decodable {
            let text: String
            let input_ids: [Int]
        }
        let prompts: [Prompt]
        let reference_prompt: Int
        let max_new_tokens: Int
        let parameters: Int
        let stop_token_ids: [Int]
    }

    /// Decoded with JSONDecoder, which keeps every scalar of the texts.
    var expected: Expected {
        get throws {
            try JSONDecoder().decode(
                Expected.self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
        }
    }

    func engine() throws -> Engine {
        var settings = RunConfig()
        settings.model = directory.path
        settings.threads = 2
        return try Engine(settings: settings, world: SingleProcess())
    }
}

@Suite("Replicas of NVIDIA's published checkpoints against transformers")
struct ReplicaTests {
    /// Every fixture is float32: logits within 1e-4 of transformers.
    let tolerance: Float = 1e-4

    @Test("prefill logits match", arguments: Replica.all)
    func prefill(replica: Replica) throws {
        let reference = try replica.reference
        let engine = try replica.engine()
        let logits = try engine.makeScheduler().prefillLogits(try reference.ints("prompt_ids"))
        #expect(maxAbsDifference(logits, try reference.floats("prefill_logits")) <= tolerance)
    }

    @Test("greedy ids and step logits match, from the raw-text prompt", arguments: Replica.all)
    func greedy(replica: Replica) throws {
        let reference = try replica.reference
        let expected = try replica.expected
        let engine = try replica.engine()
        let prompt = expected.prompts[expected.reference_prompt]
        let ids = try #require(engine.tokenizer).encodePrompt(prompt.text)
        #expect(ids == (try reference.ints("prompt_ids")))
        let result = try #require(
            try engine.generate([Request(prompt: ids, maxNewTokens: expected.max_new_tokens, keepLogits: true)]).first)
        #expect(result.ids == (try reference.ints("greedy_ids")))
        #expect(maxAbsDifference(result.stepLogits.flatMap { $0 }, try reference.floats("step_logits")) <= tolerance)
    }

    @Test("raw-text prompts tokenize as tokenizer(text)[\"input_ids\"]", arguments: Replica.all)
    func promptIds(replica: Replica) throws {
        let tokenizer = try Tokenizer(directory: replica.directory)
        for prompt in try replica.expected.prompts {
            #expect(tokenizer.encodePrompt(prompt.text) == prompt.input_ids, "\(prompt.text.debugDescription)")
        }
    }

    @Test("parameter count and stop ids", arguments: Replica.all)
    func countsAndStops(replica: Replica) throws {
        let engine = try replica.engine()
        let expected = try replica.expected
        #expect(engine.model.parameterCount == expected.parameters)
        #expect(engine.stopTokenIds == expected.stop_token_ids)
    }

    @Test("published forms decode to what transformers built")
    func forms() throws {
        let eightB = try ModelConfig(directory: Replica.all[0].directory)
        #expect(eightB.timeStepLimit == 0...Float.infinity && eightB.headDim == 16 && eightB.declaredDType == "float32")
        let nano = try ModelConfig(directory: Replica.all[1].directory)
        #expect(nano.headDim == 24 && nano.numHeads * nano.headDim != nano.hiddenSize)
        let three = try ModelConfig(directory: Replica.all[2].directory)
        #expect(three.pattern == "MEM*EM-E" && three.mtpLayers == 1 && three.eosTokenIds == [2, 11])
        #expect(three.declaredDType == "float32")
        let vl = try ModelConfig(directory: Replica.all[3].directory)
        #expect(vl.modelType == "NemotronH_Nano_VL_V2" && vl.weightPrefix == "language_model.")
        #expect(vl.eosTokenIds == [2, 12])
        let resaved = try ModelConfig(directory: Replica.all[4].directory)
        #expect(resaved.timeStepLimit == 0...Float.infinity && resaved.pattern == "M*M-E")
    }

    @Test("the VL wrapper's checkpoint shows only its language model; MTP tensors are present but unused")
    func tensorViews() throws {
        let vl = try Checkpoint(directory: Replica.all[3].directory, prefix: "language_model.")
        #expect(vl.contains(WeightNames.embeddings) && vl.contains(WeightNames.lmHead))
        #expect(vl.names.allSatisfy { $0.hasPrefix(WeightNames.backbone) || $0 == WeightNames.lmHead })
        let whole = try Checkpoint(directory: Replica.all[3].directory)
        #expect(
            whole.names.contains { $0.hasPrefix("vision_model.") } && whole.names.contains { $0.hasPrefix("mlp1.") })

        let three = try Checkpoint(directory: Replica.all[2].directory)
        #expect(three.files.count == 3 && three.names.contains { $0.hasPrefix(WeightNames.mtp) })

        let singular = try Checkpoint(directory: Replica.all[4].directory)
        #expect(singular.contains(WeightNames.embeddings) && !singular.contains("backbone.embedding.weight"))
    }
}

extension ProcessSuites {
    @Suite("Replicas on the command line", .serialized)
    struct ReplicaCLITests {
        @Test("inspect --json reports transformers' parameter count and the stop ids", arguments: Replica.all)
        func inspect(replica: Replica) throws {
            let run = try CLI.run(["inspect", "--json", "--model", replica.directory.path])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            let expected = try replica.expected
            #expect(json["parameters"] as? Int == expected.parameters)
            #expect(json["stop_token_ids"] as? [Int] == expected.stop_token_ids)
            let model = try #require(json["model"] as? [String: Any])
            #expect(model["layers"] as? Int == (try ModelConfig(directory: replica.directory)).numLayers)
            #expect((json["ranks"] as? [Any])?.count == 1)
            #expect((json["settings"] as? [String: Any])?["model"] as? String == replica.directory.path)
        }

        @Test("inspect --json under mpirun gathers every rank's plan to rank 0")
        func inspectRanks() throws {
            let replica = Replica.all[2]
            let run = try ProcessSuites.TensorParallelTests.run(
                ranks: 2, ["inspect", "--json", "--model", replica.directory.path])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            let ranks = try #require(json["ranks"] as? [[String: Any]])
            #expect(ranks.map { $0["rank"] as? Int } == [0, 1])
            #expect(ranks.map { $0["q_heads"] as? [Int] } == [[0, 2], [2, 4]])
            #expect(ranks.map { $0["expert_width"] as? [Int] } == [[0, 16], [16, 32]])
            #expect(ranks.allSatisfy { ($0["weight_bytes"] as? Int ?? 0) > 0 })
            #expect(json["parameters"] as? Int == (try replica.expected).parameters)
            #expect((json["tensor_parallel"] as? [String: Any])?["size"] as? Int == 2)
        }

        @Test(
            "the VL wrapper and the MTP checkpoint run split over 2 ranks", arguments: [Replica.all[2], Replica.all[3]])
        func tensorParallel(replica: Replica) throws {
            let expected = try replica.expected
            let run = try ProcessSuites.TensorParallelTests.run(
                ranks: 2,
                [
                    "generate", "--model", replica.directory.path, "--prompt", expected.prompts[0].text,
                    "--max-new-tokens", "\(expected.max_new_tokens)", "--json",
                ])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            #expect(json["prompt_ids"] as? [Int] == expected.prompts[0].input_ids)
            #expect(json["generated_ids"] as? [Int] == (try replica.reference.ints("greedy_ids")))
        }

        @Test("generate --prompt TEXT --json: transformers' prompt ids and greedy ids")
        func generate() throws {
            let replica = Replica.all[0]
            let expected = try replica.expected
            let run = try CLI.run([
                "generate", "--model", replica.directory.path, "--prompt", expected.prompts[0].text,
                "--max-new-tokens", "\(expected.max_new_tokens)", "--json",
            ])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            #expect(json["prompt_ids"] as? [Int] == expected.prompts[0].input_ids)
            #expect(json["generated_ids"] as? [Int] == (try replica.reference.ints("greedy_ids")))
        }

        @Test("--ignore-eos runs past an end-of-sequence token to the budget")
        func ignoreEOS() throws {
            let replica = Replica.all[0]
            let greedy = try replica.reference.ints("greedy_ids")
            let prompt = try replica.reference.ints("prompt_ids").map(String.init).joined(separator: ",")
            // Make the second greedy id an EOS id: a stop there, unless ignored.
            let directory = try TemporaryDirectory()
            let copy = directory.url.appendingPathComponent(replica.name)
            try FileManager.default.copyItem(at: replica.directory, to: copy)
            try "{\"eos_token_id\": [2, \(greedy[1])]}".write(
                to: copy.appendingPathComponent("generation_config.json"), atomically: false, encoding: .utf8)
            let arguments = ["generate", "--model", copy.path, "--tokens", prompt, "--max-new-tokens", "6", "--json"]
            let stopped = try CLI.run(arguments)
            #expect(stopped.status == 0, "\(stopped.stderr)")
            let first = try #require(
                try JSONSerialization.jsonObject(with: Data(stopped.stdout.utf8)) as? [String: Any])
            #expect(
                first["generated_ids"] as? [Int] == Array(greedy.prefix(2))
                    && first["finish_reason"] as? String == "eos")
            let ignored = try CLI.run(arguments + ["--ignore-eos"])
            #expect(ignored.status == 0, "\(ignored.stderr)")
            let second = try #require(
                try JSONSerialization.jsonObject(with: Data(ignored.stdout.utf8)) as? [String: Any])
            #expect(second["generated_ids"] as? [Int] == Array(greedy.prefix(6)))
            #expect(second["finish_reason"] as? String == "length")
        }
    }
}
