import Testing
@testable import Nemotron

@Suite("Batched generation")
struct GeneratorTests {
    /// Six prompts of different lengths and budgets, including one longer than chunk_size.
    static let requests = [
        Request(prompt: [5, 9, 200, 31], maxNewTokens: 6), Request(prompt: [77], maxNewTokens: 3),
        Request(prompt: Array(100..<121), maxNewTokens: 8), Request(prompt: [3, 4, 5, 6, 7, 8, 9, 10, 11], maxNewTokens: 1),
        Request(prompt: [400, 401], maxNewTokens: 5),
        Request(prompt: [12, 13, 14], maxNewTokens: 7, sampling: SamplingParameters(temperature: 0.9, topK: 20, seed: 7)),
    ]

    @Test("every request of a batch gets the tokens it gets alone", arguments: [Fixture.all[0], Fixture.all[1], Fixture.all[2]])
    func batchEqualsAlone(fixture: Fixture) throws {
        let model = try fixture.load()
        let generator = Generator(model: model, workspace: Workspace(threads: 2), communicator: SingleProcess())
        var passes = 0
        let batch = try generator.generate(Self.requests, stopIds: [], onToken: { request, _ in if request == 0 { passes += 1 } })
        for (request, result) in zip(Self.requests, batch) {
            let alone = try generator.generate(prompt: request.prompt, maxNewTokens: request.maxNewTokens, sampling: request.sampling,
                                               stopIds: [])
            #expect(result.ids == alone.ids)
            #expect(result.ids.count == request.maxNewTokens && result.finishReason == .length)
        }
        #expect(passes == Self.requests[0].maxNewTokens)
    }

    @Test("prefill in small chunks gives the same tokens and logits", arguments: [Fixture.all[0], Fixture.all[1]])
    func chunkedPrefill(fixture: Fixture) throws {
        let reference = try fixture.reference
        let generator = Generator(model: try fixture.load(), workspace: Workspace(threads: 2), communicator: SingleProcess())
        generator.prefillChunk = 3
        let requests = [Request(prompt: try reference.ints("prompt_ids"), maxNewTokens: try reference.ints("greedy_ids").count), Request(prompt: [9, 8], maxNewTokens: 2)]
        let results = try generator.generate(requests, stopIds: [], keepLogits: true)
        #expect(results[0].ids == (try reference.ints("greedy_ids")))
        #expect(maxAbsDifference(results[0].stepLogits.flatMap { $0 }, try reference.floats("step_logits")) <= 1e-4)
    }

    @Test("requests finish on their own: EOS, stop condition or budget")
    func independentFinish() throws {
        let fixture = Fixture.all[0]
        let model = try fixture.load()
        let generator = Generator(model: model, workspace: Workspace(threads: 1), communicator: SingleProcess())
        let prompt = try fixture.reference.ints("prompt_ids")
        let greedy = try fixture.reference.ints("greedy_ids")
        // Stop on the reference's third token as if it were EOS; stop request 1 by condition after 2 tokens.
        let results = try generator.generate(
            [Request(prompt: prompt, maxNewTokens: 8), Request(prompt: prompt, maxNewTokens: 8), Request(prompt: [1, 2], maxNewTokens: 4)],
            stopIds: [greedy[2]], shouldStop: { request, ids in request == 1 && ids.count == 2 })
        #expect(results[0].ids == Array(greedy.prefix(3)) && results[0].finishReason == .eos)
        #expect(results[1].ids == Array(greedy.prefix(2)) && results[1].finishReason == .stop)
        #expect(results[2].ids.count == 4 || results[2].finishReason == .eos)
    }
}
