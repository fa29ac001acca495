import Foundation
import Testing

@testable import Nemotron

/// The scheduler as a server drives it: requests joining at step boundaries, bounded batches and
/// passes, passes mixing decode rows with prefill chunks, cancellation. With f32 compute every
/// request must keep the tokens it gets alone.
@Suite("Continuous batching")
struct ContinuousBatchingTests {
    func scheduler(_ model: NemotronH, maxBatchSize: Int = 0, maxNumTokens: Int = 0, prefillChunk: Int = 512)
        -> Scheduler
    {
        Scheduler(
            model: model, workspace: Workspace(threads: 2), tokenizer: nil, stopIds: [], prefillChunk: prefillChunk,
            maxBatchSize: maxBatchSize, maxNumTokens: maxNumTokens)
    }

    func alone(_ model: NemotronH, _ request: Request) throws -> [Int] {
        let single = scheduler(model)
        try single.submit(request)
        return single.run()[0].ids
    }

    @Test("max_batch_size bounds the running requests; the others wait and keep their own tokens")
    func batchBound() throws {
        let model = try Fixture.all[0].load()
        let batched = scheduler(model, maxBatchSize: 2)
        for request in SchedulerTests.requests { try batched.submit(request) }
        var most = 0
        while batched.step() != nil { most = max(most, batched.runningCount) }
        #expect(most == 2)
        for (request, result) in zip(SchedulerTests.requests, batched.results()) {
            #expect(result.ids == (try alone(model, request)))
        }
    }

    @Test("max_num_tokens bounds each pass; decode rows go first and prompts are read in chunks between them")
    func tokenBound() throws {
        let model = try Fixture.all[1].load()
        let bounded = scheduler(model, maxNumTokens: 8, prefillChunk: 5)
        let requests = [
            Request(prompt: [5, 9, 200, 31], maxNewTokens: 12), Request(prompt: Array(100..<121), maxNewTokens: 6),
            Request(prompt: Array(30..<47), maxNewTokens: 4),
        ]
        try bounded.submit(requests[0])
        var passes: [(rows: Int, tokens: Int)] = []
        var mixed = false
        for step in 0..<60 {
            if step == 2 {
                try bounded.submit(requests[1])
                try bounded.submit(requests[2])
            }
            guard bounded.step() != nil else { break }
            passes.append(bounded.lastPass)
            // A pass with the first request decoding and the others still reading their prompts.
            if bounded.runningCount == 3 && bounded.lastPass.tokens > bounded.lastPass.rows { mixed = true }
        }
        #expect(passes.allSatisfy { $0.tokens <= 8 }, "\(passes)")
        #expect(mixed)
        for (request, result) in zip(requests, bounded.results()) {
            #expect(result.ids == (try alone(model, request)))
        }
    }

    @Test("bf16 weights: prompts that take each product kernel (9-64, 65-128, over 128 tokens) keep their tokens")
    func productPaths() throws {
        // Alone, the prompts run the decode-batch kernel (40 tokens), the short-prompt kernel (90)
        // and OpenBLAS on widened tiles (150); together their first pass (280 tokens) is one tiled
        // product, then decode rows stream. Greedy tokens must not depend on which path ran.
        let model = try Fixture.all[3].load()
        #expect(model.config.vocabSize == 512)
        let requests = [40, 90, 150].map { length in
            Request(prompt: (0..<length).map { (7 * $0 + length) % 509 + 3 }, maxNewTokens: 6)
        }
        let batched = scheduler(model)
        for request in requests { try batched.submit(request) }
        for (request, result) in zip(requests, batched.run()) {
            let single = try alone(model, request)
            #expect(result.ids.count == 6 && result.ids == single)
        }
    }

    @Test("cancel ends a waiting or running request at once; the others are not disturbed")
    func cancel() throws {
        let model = try Fixture.all[0].load()
        let running = scheduler(model, maxBatchSize: 2)
        let requests = (0..<3).map { Request(prompt: [5 + $0, 9, 200], maxNewTokens: 8) }
        for request in requests { try running.submit(request) }
        _ = running.step()
        _ = running.step()
        guard case .finished(1, let cancelled)? = running.cancel(1) else {
            Issue.record("no finish event for a running request")
            return
        }
        #expect(cancelled.finishReason == .cancelled && cancelled.ids.count == 2)
        #expect(running.runningCount == 1 && running.waitingCount == 1, "its place is free for the next step")
        guard case .finished(2, let waiting)? = running.cancel(2) else {
            Issue.record("no finish event for a waiting request")
            return
        }
        #expect(waiting.ids.isEmpty && waiting.finishReason == .cancelled)
        #expect(running.cancel(2) == nil && running.cancel(99) == nil)
        let results = running.run()
        #expect(results[0].ids == (try alone(model, requests[0])))
        running.release(0)
        #expect(running.results().count == 2)
    }

    @Test("a request's ignore_eos lets it run to its budget past the stop ids")
    func ignoreEOS() throws {
        let fixture = Fixture.all[0]
        let prompt = try fixture.reference.ints("prompt_ids")
        let greedy = try fixture.reference.ints("greedy_ids")
        let stopping = Scheduler(
            model: try fixture.load(), workspace: Workspace(threads: 2), tokenizer: nil, stopIds: [greedy[1]])
        try stopping.submit(Request(prompt: prompt, maxNewTokens: 5))
        try stopping.submit(Request(prompt: prompt, maxNewTokens: 5, ignoreEOS: true))
        let results = stopping.run()
        #expect(results[0].ids == Array(greedy.prefix(2)) && results[0].finishReason == .eos)
        #expect(results[1].ids == Array(greedy.prefix(5)) && results[1].finishReason == .length)
    }

    @Test("step events cross ranks in the binary layout unchanged")
    func eventRecords() {
        var generation = Generation(promptTokens: 4)
        generation.ids = [3, 70000]
        generation.text = "ünï ✓"
        generation.finishReason = .cancelled
        let events: [GenerationEvent] = [
            .token(request: 7, id: 70000, text: "✓ é"), .token(request: 2, id: 0, text: ""),
            .finished(request: 7, generation),
        ]
        let decoded = GenerationRecord.decode(events: GenerationRecord.encode(events: events))
        #expect(decoded.count == 3)
        if case .token(7, 70000, "✓ é") = decoded[0], case .token(2, 0, "") = decoded[1],
            case .finished(7, let g) = decoded[2]
        {
            #expect(g == generation)
        } else {
            Issue.record("decoded \(decoded)")
        }
    }
}

extension GenerationEvent: Equatable {
    public static func == (a: GenerationEvent, b: GenerationEvent) -> Bool {
        switch (a, b) {
        case (.token(let r1, let i1, let t1), .token(let r2, let i2, let t2)): return r1 == r2 && i1 == i2 && t1 == t2
        case (.finished(let r1, let g1), .finished(let r2, let g2)): return r1 == r2 && g1 == g2
        default: return false
        }
    }
}
