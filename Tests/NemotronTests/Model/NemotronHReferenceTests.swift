import Foundation
import Testing

@testable import Nemotron

@Suite("NemotronH against transformers")
struct NemotronHReferenceTests {
    func scheduler(_ model: NemotronH, stopIds: Set<Int> = []) -> Scheduler {
        Scheduler(model: model, workspace: Workspace(threads: 2), tokenizer: nil, stopIds: stopIds)
    }

    /// One request run alone to its end.
    func generate(
        _ model: NemotronH, prompt: [Int], maxNewTokens: Int, stopIds: Set<Int> = [], keepLogits: Bool = false
    ) throws -> Generation {
        let run = scheduler(model, stopIds: stopIds)
        try run.submit(Request(prompt: prompt, maxNewTokens: maxNewTokens, keepLogits: keepLogits))
        return run.run()[0]
    }

    @Test("prefill logits match", arguments: Fixture.all)
    func prefill(fixture: Fixture) throws {
        let reference = try fixture.reference
        let logits = try scheduler(try fixture.load()).prefillLogits(try reference.ints("prompt_ids"))
        #expect(maxAbsDifference(logits, try reference.floats("prefill_logits")) <= fixture.tolerance)
    }

    @Test("greedy ids and step-decode logits match", arguments: Fixture.all)
    func greedyDecode(fixture: Fixture) throws {
        let reference = try fixture.reference
        let model = try fixture.load()
        let expected = try reference.ints("greedy_ids")
        let result = try generate(
            model, prompt: try reference.ints("prompt_ids"), maxNewTokens: expected.count,
            stopIds: Set(model.config.eosTokenIds), keepLogits: true)
        #expect(result.ids == expected)
        #expect(
            maxAbsDifference(result.stepLogits.flatMap { $0 }, try reference.floats("step_logits")) <= fixture.tolerance
        )
    }

    @Test("MoE expert choices match", arguments: Fixture.all.filter { $0.name.contains("moe") })
    func expertChoices(fixture: Fixture) throws {
        let reference = try fixture.reference
        let run = scheduler(try fixture.load())
        let trace = RoutingTrace()
        run.workspace.routingTrace = trace
        _ = try run.prefillLogits(try reference.ints("prompt_ids"))
        #expect(!reference.expertLayers.isEmpty)
        for layer in reference.expertLayers {
            let k = try reference.shape("experts.\(layer)")[1]
            let expected = try reference.ints("experts.\(layer)")
            let chosen = try #require(trace.experts[layer])
            #expect(chosen.flatMap { $0 } == expected, "layer \(layer)")
            #expect(chosen.allSatisfy { $0.count == k })
        }
    }

    @Test("decoding token by token equals one prefill", arguments: Fixture.all)
    func decodeEqualsPrefill(fixture: Fixture) throws {
        let model = try fixture.load()
        let tokens = try fixture.reference.ints("prompt_ids")
        let workspace = Workspace(threads: 2)
        let prefill = model.forward(
            tokens, sequence: model.makeSequence(capacity: tokens.count), logits: .all, workspace: workspace
        ).array
        let sequence = model.makeSequence(capacity: 4)
        let stepped = tokens.flatMap {
            model.forward([$0], sequence: sequence, logits: .last, workspace: workspace).array
        }
        #expect(maxAbsDifference(prefill, stepped) <= 1e-4)
        #expect(sequence.position == tokens.count)
    }

    /// bf16 activations in prefill GEMMs: logits within 0.1 of transformers' f32 (logit std 1),
    /// same arg-max everywhere and the same greedy continuation.
    @Test("bf16 compute stays close and keeps the greedy ids", arguments: [Fixture.all[3]])
    func bf16Compute(fixture: Fixture) throws {
        let reference = try fixture.reference
        let model = try fixture.load()
        model.compute = ComputePolicy(prefill: .bf16)
        let run = scheduler(model)
        let prompt = try reference.ints("prompt_ids")
        let logits = try run.prefillLogits(prompt)
        let expected = try reference.floats("prefill_logits")
        #expect(maxAbsDifference(logits, expected) <= 0.1)
        let V = run.model.config.vocabSize
        for t in 0..<prompt.count {
            #expect(Sampler.argmax(logits[t * V..<(t + 1) * V]) == Sampler.argmax(expected[t * V..<(t + 1) * V]))
        }
        let greedy = try reference.ints("greedy_ids")
        #expect(try generate(model, prompt: prompt, maxNewTokens: greedy.count).ids == greedy)
    }

    @Test("prefill in two pieces continues the state exactly", arguments: [Fixture.all[0]])
    func chunkedPrefill(fixture: Fixture) throws {
        let model = try fixture.load()
        let tokens = try fixture.reference.ints("prompt_ids")
        let workspace = Workspace(threads: 1)
        let whole = model.forward(
            tokens, sequence: model.makeSequence(capacity: 32), logits: .last, workspace: workspace
        ).array
        let sequence = model.makeSequence(capacity: 32)
        let split = tokens.count / 2 + 1
        _ = model.forward(Array(tokens[..<split]), sequence: sequence, logits: .last, workspace: workspace)
        let pieces = model.forward(Array(tokens[split...]), sequence: sequence, logits: .last, workspace: workspace)
            .array
        #expect(maxAbsDifference(whole, pieces) <= 1e-4)
    }
}
