import Foundation
import Testing

@testable import Nemotron
@testable import NemotronServer

/// The server's parts without HTTP or MPI: the control message layout, request parsing and its
/// 400s, the metrics text, and the serving loop fed through the bridge in one process.
@Suite("Server parts")
struct ServerUnitTests {
    static let chatModel = Fixture.root.appendingPathComponent("replicas/nemotron-3")

    @Test("the control message crosses ranks in its binary layout unchanged")
    func controlMessage() {
        let request = Request(
            prompt: [1, 70000, 0], maxNewTokens: 9,
            sampling: SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, seed: .max), stop: ["\n\n", "✓é"],
            ignoreEOS: true)
        let message = ControlMessage(
            step: 12, shutdown: false, cancels: [3, 5],
            admits: [
                .init(id: 7, rank: 1, request: request),
                .init(id: 8, rank: 0, request: Request(prompt: [2], maxNewTokens: 1)),
            ])
        #expect(ControlMessage(decoding: message.encode()) == message)
        let shutdown = ControlMessage(step: 13, shutdown: true)
        #expect(ControlMessage(decoding: shutdown.encode()) == shutdown)
        #expect(ControlMessage().encode().count == 32)
    }

    func parser(maxModelLen: Int = 64) throws -> RequestParser {
        var defaults = RunConfig()
        defaults.maxNewTokens = 5
        return RequestParser(
            modelName: "m", tokenizer: try Tokenizer(directory: Self.chatModel),
            template: Result { try ChatTemplate.load(directory: Self.chatModel) }, vocabSize: 640,
            maxModelLen: maxModelLen, defaults: defaults)
    }

    @Test("completions: prompts as text (with special tokens) or ids; defaults and sampling parameters")
    func completion() throws {
        let parser = try parser()
        let tokenizer = try Tokenizer(directory: Self.chatModel)
        let text = try parser.completion(#"{"prompt": "Hello there", "model": "m"}"#)
        #expect(text.request.prompt == tokenizer.encode("Hello there", addSpecialTokens: true))
        #expect(text.request.maxNewTokens == 5 && text.request.sampling.temperature == 0 && !text.stream)
        let ids = try parser.completion(
            #"{"prompt": [[4, 5, 6]], "max_tokens": 3, "temperature": 0.5, "top_p": 0.5, "top_k": -1, "seed": 3, "#
                + #""stop": "x", "stream": true, "stream_options": {"include_usage": true}, "ignore_eos": true}"#)
        #expect(ids.request.prompt == [4, 5, 6] && ids.request.maxNewTokens == 3 && ids.request.stop == ["x"])
        #expect(ids.request.sampling == SamplingParameters(temperature: 0.5, topK: 0, topP: 0.5, seed: 3))
        #expect(ids.stream && ids.includeUsage && ids.request.ignoreEOS)
    }

    @Test("chat: the checkpoint's template with the generation prompt, tokenized without special tokens")
    func chat() throws {
        let job = try parser().chat(
            #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "#
                + #""max_completion_tokens": 4}"#)
        let template = try ChatTemplate.load(directory: Self.chatModel)
        let messages = try ChatTemplate.messages(
            fromJSON: #"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]"#,
            source: "test")
        let text = try template.render(messages: messages, addGenerationPrompt: true)
        #expect(job.request.prompt == (try Tokenizer(directory: Self.chatModel)).encode(text, addSpecialTokens: false))
        #expect(job.request.maxNewTokens == 4 && job.kind == .chat)
    }

    @Test(
        "bad requests are refused with 400 and the parameter named",
        arguments: [
            ("{", nil), ("[]", nil), (#"{"prompt": 3}"#, "prompt"), (#"{"prompt": []}"#, "prompt"),
            (#"{"prompt": [1, 2.5]}"#, "prompt"), (#"{"prompt": "a", "max_tokens": 0}"#, "max_tokens"),
            (#"{"prompt": "a", "max_tokens": 2.5}"#, "max_tokens"),
            (#"{"prompt": "a", "max_tokens": true}"#, "max_tokens"),
            (#"{"prompt": "a", "temperature": "hot"}"#, "temperature"),
            (#"{"prompt": "a", "temperature": -1}"#, "temperature"), (#"{"prompt": "a", "top_p": 0}"#, "top_p"),
            (#"{"prompt": "a", "top_k": -2}"#, "top_k"), (#"{"prompt": "a", "stop": [1]}"#, "stop"),
            (#"{"prompt": "a", "stop": ""}"#, "stop"), (#"{"prompt": "a", "n": 3}"#, "n"),
            (#"{"prompt": "a", "stream": 1}"#, "stream"), (#"{"prompt": "a", "stream_options": {}}"#, "stream_options"),
            (#"{"prompt": "a", "logprobs": 2}"#, "logprobs"), (#"{"prompt": ["a", "b"]}"#, "prompt"),
            (#"{"prompt": [1, 999]}"#, "prompt"), (#"{"prompt": "a", "max_tokens": 64}"#, "prompt"),
        ] as [(String, String?)])
    func badCompletion(body: String, param: String?) throws {
        #expect(throws: APIError.self) { try parser().completion(body) }
        do {
            _ = try parser().completion(body)
        } catch let error as APIError {
            #expect(error.status == .badRequest && error.type == "invalid_request_error" && error.param == param)
        }
    }

    @Test("chat refusals: no messages, bad messages, a template that raises, an unknown model (404)")
    func badChat() throws {
        for (body, status) in [
            (#"{"messages": []}"#, 400), (#"{"messages": [{"role": "user"}]}"#, 400),
            (#"{"messages": [{"role": "wizard", "content": "x"}]}"#, 400), (#"{"max_tokens": 2}"#, 400),
            (#"{"messages": [{"role": "user", "content": "x"}], "chat_template_kwargs": [1]}"#, 400),
            (#"{"messages": [{"role": "user", "content": "x"}], "model": "other"}"#, 404),
        ] {
            do {
                _ = try parser().chat(body)
                Issue.record("accepted \(body)")
            } catch let error as APIError {
                #expect(Int(error.status.code) == status, "\(body): \(error.message)")
            }
        }
    }

    @Test("the metrics text: cumulative histogram buckets, counters by label")
    func metrics() {
        var metrics = Metrics()
        metrics.timeToFirstToken.observe(0.02)
        metrics.timeToFirstToken.observe(3)
        metrics.finished["length"] = 2
        let text = metrics.text()
        #expect(text.contains("nemotron_time_to_first_token_seconds_bucket{le=\"0.025\"} 1\n"))
        #expect(text.contains("nemotron_time_to_first_token_seconds_bucket{le=\"5\"} 2\n"))
        #expect(text.contains("nemotron_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"))
        #expect(text.contains("nemotron_time_to_first_token_seconds_count 2\n"))
        #expect(text.contains("nemotron_requests_finished_total{finish_reason=\"length\"} 2\n"))
        #expect(text.contains("nemotron_requests_finished_total{finish_reason=\"cancelled\"} 0\n"))
    }

    @Test("two ranks in one process: the control message reaches every rank, both run the same batches")
    func twoRanks() throws {
        let fixture = Fixture.all[1]
        let models = try (0..<2).map { try fixture.load(tpSize: 2, rank: $0) }
        let group = InProcessGroup(size: 2)
        #expect(
            group.run(2) { rank, member in member.broadcast(bytes: rank == 0 ? [1, 2, 3] : [9], root: 0) }
                == [[1, 2, 3], [1, 2, 3]])
        let bridge = ServerBridge(capacity: 8)
        let requests = [
            Request(prompt: try fixture.reference.ints("prompt_ids"), maxNewTokens: 6),
            Request(prompt: [7, 8, 9], maxNewTokens: 3),
        ]
        let results = UncheckedSendable(NSMutableArray())
        let client = Thread {
            let streams = requests.compactMap { try? bridge.submit($0) }
            let done = DispatchSemaphore(value: 0)
            Task {
                for stream in streams {
                    for await event in stream.events {
                        if case .finished(let generation) = event { results.value.add(generation.ids) }
                    }
                }
                bridge.beginShutdown()
                done.signal()
            }
            done.wait()
        }
        client.start()
        group.run(2) { rank, member in
            let model = models[rank].joining(member)
            let scheduler = Scheduler(model: model, workspace: Workspace(threads: 1), tokenizer: nil, stopIds: [])
            ServingLoop(scheduler: scheduler, world: member, bridge: rank == 0 ? bridge : nil).run()
        }
        let ids = results.value.compactMap { $0 as? [Int] }
        #expect(ids.count == 2)
        #expect(ids.first == Array(try fixture.reference.ints("greedy_ids").prefix(6)))
    }

    @Test("the serving loop in one process: requests through the bridge get their own tokens; cancel; shutdown")
    func servingLoop() async throws {
        let model = try Fixture.all[0].load()
        let scheduler = Scheduler(
            model: model, workspace: Workspace(threads: 1), tokenizer: nil, stopIds: [], maxBatchSize: 2)
        let bridge = ServerBridge(capacity: 4)
        let loop = ServingLoop(scheduler: scheduler, world: model.parallelism.world, bridge: bridge)
        let done = DispatchSemaphore(value: 0)
        let shared = UncheckedSendable(loop)
        let thread = Thread {
            shared.value.run()
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        let requests = (0..<3).map { Request(prompt: [5, 9 + $0, 200], maxNewTokens: 4 + $0) }
        let streams = try requests.map { try bridge.submit($0) }
        let long = try bridge.submit(Request(prompt: [7], maxNewTokens: 400))
        #expect(throws: APIError.self) { try bridge.submit(requests[0]) }  // capacity 4
        bridge.cancel(long.key)
        for (request, stream) in zip(requests, streams) {
            var ids: [Int] = []
            var finished: Generation?
            for await event in stream.events {
                if case .token(let id, _) = event { ids.append(id) }
                if case .finished(let generation) = event { finished = generation }
            }
            let single = Scheduler(model: model, workspace: Workspace(threads: 1), tokenizer: nil, stopIds: [])
            try single.submit(request)
            #expect(ids == single.run()[0].ids && finished?.ids == ids)
        }
        var cancelled: FinishReason?
        for await event in long.events {
            if case .finished(let generation) = event { cancelled = generation.finishReason }
        }
        #expect(cancelled == .cancelled)
        bridge.beginShutdown()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(throws: APIError.self) { try bridge.submit(requests[0]) }
        #expect(bridge.metricsText.contains("nemotron_requests_finished_total{finish_reason=\"cancelled\"} 1\n"))
    }
}
