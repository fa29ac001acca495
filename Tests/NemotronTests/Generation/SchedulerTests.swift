import Foundation
import Testing

@testable import Nemotron

@Suite("Scheduler")
struct SchedulerTests {
    /// Six prompts of different lengths and budgets, including one longer than chunk_size.
    static let requests = [
        Request(prompt: [5, 9, 200, 31], maxNewTokens: 6), Request(prompt: [77], maxNewTokens: 3),
        Request(prompt: Array(100..<121), maxNewTokens: 8),
        Request(prompt: [3, 4, 5, 6, 7, 8, 9, 10, 11], maxNewTokens: 1),
        Request(prompt: [400, 401], maxNewTokens: 5),
        Request(
            prompt: [12, 13, 14], maxNewTokens: 7, sampling: SamplingParameters(temperature: 0.9, topK: 20, seed: 7)),
    ]

    func scheduler(
        _ model: NemotronH, threads: Int = 2, stopIds: Set<Int> = [], tokenizer: Tokenizer? = nil,
        prefillChunk: Int = 512
    ) -> Scheduler {
        Scheduler(
            model: model, workspace: Workspace(threads: threads), tokenizer: tokenizer, stopIds: stopIds,
            prefillChunk: prefillChunk)
    }

    func run(_ scheduler: Scheduler, _ requests: [Request]) throws -> [Generation] {
        for request in requests { try scheduler.submit(request) }
        return scheduler.run()
    }

    @Test(
        "every request of a batch gets the tokens it gets alone",
        arguments: [Fixture.all[0], Fixture.all[1], Fixture.all[2]])
    func batchEqualsAlone(fixture: Fixture) throws {
        let model = try fixture.load()
        let batch = scheduler(model)
        for request in Self.requests { try batch.submit(request) }
        var tokenEvents = 0
        let results = batch.run { event in if case .token(0, _, _) = event { tokenEvents += 1 } }
        for (request, result) in zip(Self.requests, results) {
            let alone = try run(scheduler(model), [request])[0]
            #expect(result.ids == alone.ids)
            #expect(result.ids.count == request.maxNewTokens && result.finishReason == .length)
        }
        #expect(tokenEvents == Self.requests[0].maxNewTokens)
    }

    @Test("prefill in small chunks gives the same tokens and logits", arguments: [Fixture.all[0], Fixture.all[1]])
    func chunkedPrefill(fixture: Fixture) throws {
        let reference = try fixture.reference
        let greedy = try reference.ints("greedy_ids")
        let results = try run(
            scheduler(try fixture.load(), prefillChunk: 3),
            [
                Request(prompt: try reference.ints("prompt_ids"), maxNewTokens: greedy.count, keepLogits: true),
                Request(prompt: [9, 8], maxNewTokens: 2),
            ])
        #expect(results[0].ids == greedy)
        #expect(maxAbsDifference(results[0].stepLogits.flatMap { $0 }, try reference.floats("step_logits")) <= 1e-4)
    }

    @Test("requests finish on their own: EOS or budget; a zero budget finishes at once")
    func independentFinish() throws {
        let fixture = Fixture.all[0]
        let prompt = try fixture.reference.ints("prompt_ids")
        let greedy = try fixture.reference.ints("greedy_ids")
        // The reference's third token acts as EOS.
        let results = try run(
            scheduler(try fixture.load(), threads: 1, stopIds: [greedy[2]]),
            [
                Request(prompt: prompt, maxNewTokens: 8), Request(prompt: [1, 2], maxNewTokens: 4),
                Request(prompt: [3], maxNewTokens: 0),
            ])
        #expect(results[0].ids == Array(greedy.prefix(3)) && results[0].finishReason == .eos)
        #expect(results[1].ids.count == 4 || results[1].finishReason == .eos)
        #expect(results[2].ids.isEmpty && results[2].finishReason == .length)
    }

    @Test("requests admitted between steps join the running batch and keep their own tokens")
    func admitsBetweenSteps() throws {
        let model = try Fixture.all[0].load()
        let running = scheduler(model)
        try running.submit(Self.requests[0])
        _ = running.step()
        _ = running.step()
        try running.submit(Self.requests[2])
        let results = running.run()
        #expect(results[0].ids == (try run(scheduler(model), [Self.requests[0]])[0].ids))
        #expect(results[1].ids == (try run(scheduler(model), [Self.requests[2]])[0].ids))
    }

    @Test("stop strings end a request; the text stops before them and the deltas add up to it")
    func stopStrings() throws {
        let model = try NemotronH(directory: Self.tiny)
        let tokenizer = try Tokenizer(directory: Self.tiny)
        let prompt = tokenizer.encodePrompt("The quick brown fox")
        let free = try run(scheduler(model, tokenizer: tokenizer), [Request(prompt: prompt, maxNewTokens: 16)])[0]
        let text = try #require(free.text)
        // Stop on a piece of the free-running text: the request must end right where it appears.
        let characters = Array(text)
        let start = characters.count / 2
        let stop = String(characters[start..<min(characters.count, start + 2)])
        let stopping = scheduler(model, tokenizer: tokenizer)
        try stopping.submit(Request(prompt: prompt, maxNewTokens: 16, stop: [stop]))
        var deltas = ""
        let result = stopping.run { if case .token(_, _, let delta) = $0 { deltas += delta } }[0]
        let expected = String(text[..<text.range(of: stop)!.lowerBound])
        #expect(result.finishReason == .stop && result.text == expected && deltas == expected)
        #expect(free.ids.starts(with: result.ids))
    }

    /// KV caches start at the prompt's length and double as they fill (memory grows with use, not
    /// with the token budget), and the decode scores follow the largest cache: a buffer is
    /// reallocated only when a cache doubles, log₂(budget) times at most, never per step.
    @Test(
        "decode steps allocate workspace buffers only when a KV cache doubles",
        arguments: [Fixture.all[0], Fixture.all[1]])
    func decodeAllocatesOnlyOnGrowth(fixture: Fixture) throws {
        let run = scheduler(try fixture.load())
        try run.submit(Request(prompt: [5, 9, 200, 31], maxNewTokens: 40))
        try run.submit(Request(prompt: [7], maxNewTokens: 40))
        for _ in 0..<3 { _ = run.step() }
        let settled = run.workspace.allocations
        while run.step() != nil {}
        // Capacities 4 → 8 → 16 → 32 → 64 (and 1 → ... → 64, within the same sizes).
        #expect(run.workspace.allocations - settled <= 4)
    }

    @Test("finished generations cross ranks in the binary layout unchanged")
    func records() {
        var a = Generation(promptTokens: 3)
        a.ids = [1, 2, 70000]
        a.text = "héllo ✓"
        a.finishReason = .stop
        a.prefillSeconds = 0.25
        a.decodeSeconds = 1.5
        a.timedDecodeSteps = 2
        a.stepLogits = [[1, -2.5, .infinity], [0, 0, 3]]
        let b = Generation(promptTokens: 1)
        let decoded = GenerationRecord.decode(GenerationRecord.encode([(4, a), (9, b)]))
        #expect(decoded.map(\.request) == [4, 9] && decoded[0].generation == a && decoded[1].generation == b)
    }

    static let tiny = Fixture.root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("models/tiny")
}
