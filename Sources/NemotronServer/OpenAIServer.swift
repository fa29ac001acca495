import Foundation
import Hummingbird
import Logging
import NIOCore
import Nemotron
import ServiceLifecycle

/// Rank 0's HTTP side: an OpenAI-compatible API on Hummingbird 2 (its own threads, Swift
/// concurrency). Handlers parse and tokenize a request, queue it on the bridge and answer from
/// its event stream, as one JSON body or as server-sent events. They never touch the model or MPI.
///
///     POST /v1/completions, POST /v1/chat/completions   (stream: true → text/event-stream)
///     GET  /v1/models, GET /health, GET /metrics
struct OpenAIServer: Sendable {
    let bridge: ServerBridge
    let parser: RequestParser
    let maxRequestBytes: Int
    let created = Int(Date().timeIntervalSince1970)

    var modelName: String { parser.modelName }

    // MARK: - Routes

    func router() -> Router<ServeContext> {
        let router = Router(context: ServeContext.self)
        router.add(middleware: ErrorMiddleware())
        router.post("/v1/completions") { request, context in
            try await complete(request, context, kind: .completion)
        }
        router.post("/v1/chat/completions") { request, context in
            try await complete(request, context, kind: .chat)
        }
        router.get("/v1/models") { _, _ in JSONBody.response(["object": "list", "data": [modelCard]]) }
        router.get("/v1/models/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard id == modelName else { throw APIError.modelNotFound(id) }
            return JSONBody.response(modelCard)
        }
        router.get("/health") { _, _ in
            bridge.isDraining
                ? JSONBody.response(["status": "shutting down"], status: .serviceUnavailable)
                : JSONBody.response(["status": "ok"])
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: bridge.metricsText)))
        }
        return router
    }

    var modelCard: JSONValue {
        [
            "id": .string(modelName), "object": "model", "created": .int(created), "owned_by": "nemotron-run",
            "max_model_len": .int(parser.maxModelLen),
        ]
    }

    // MARK: - Completions

    private func complete(_ request: Request, _ context: ServeContext, kind: CompletionJob.Kind) async throws
        -> Response
    {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: maxRequestBytes) } catch is NIOTooManyBytesError {
            bridge.rejectBadRequest()
            throw APIError.tooLarge(limit: maxRequestBytes)
        }
        let job: CompletionJob
        do {
            let text = String(buffer: body)
            job = try kind == .chat ? parser.chat(text) : parser.completion(text)
        } catch {
            bridge.rejectBadRequest()
            throw error
        }
        let (key, events) = try bridge.submit(job.request)
        // A client that goes away cancels its request (nothing happens once it has ended).
        context.channel.closeFuture.whenComplete { [bridge] _ in bridge.cancel(key) }
        let answer = Answer(job: job, key: key, model: modelName, created: Int(Date().timeIntervalSince1970))
        guard job.stream else { return try await answer.json(events, bridge: bridge) }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { [bridge] writer in
                do {
                    try await answer.stream(events, into: &writer, bridge: bridge)
                } catch {
                    bridge.cancel(key)
                    throw error
                }
            })
    }
}

/// One request's answer in the OpenAI shapes: `text_completion` or `chat.completion` as one
/// body, or chunks (`text_completion` / `chat.completion.chunk`) as server-sent events, one per
/// token, then one with the finish reason, the usage if asked, and `data: [DONE]`.
struct Answer: Sendable {
    let job: CompletionJob
    let key: Int
    let model: String
    let created: Int

    var id: String { (job.kind == .chat ? "chatcmpl-" : "cmpl-") + String(key) }
    var isChat: Bool { job.kind == .chat }

    func json(_ events: AsyncStream<ServerBridge.Event>, bridge: ServerBridge) async throws -> Response {
        for await event in events {
            switch event {
            case .token: continue
            case .failed(let error): throw error
            case .finished(let generation):
                guard let reason = Self.reason(generation.finishReason) else { throw Self.cancelled(bridge) }
                let text = JSONValue.string(generation.text ?? "")
                var choice: [(String, JSONValue)] = [("index", 0)]
                choice.append(isChat ? ("message", ["role": "assistant", "content": text]) : ("text", text))
                choice += [("logprobs", nil), ("finish_reason", .string(reason))]
                if job.returnTokenIds {
                    choice += [
                        ("token_ids", JSONValue(generation.ids)), ("prompt_token_ids", JSONValue(job.request.prompt)),
                    ]
                }
                return JSONBody.response([
                    "id": .string(id), "object": isChat ? "chat.completion" : "text_completion",
                    "created": .int(created), "model": .string(model), "choices": [.object(choice)],
                    "usage": usage(generation.ids.count),
                ])
            }
        }
        throw APIError.unavailable("the server is shutting down", code: "shutting_down")
    }

    func stream(
        _ events: AsyncStream<ServerBridge.Event>, into writer: inout any ResponseBodyWriter, bridge: ServerBridge
    ) async throws {
        var first = true
        for await event in events {
            switch event {
            case .token(let token, let text):
                let content = JSONValue.string(text)
                var choice: [(String, JSONValue)] = [("index", 0)]
                if isChat {
                    choice.append(("delta", first ? ["role": "assistant", "content": content] : ["content": content]))
                } else {
                    choice.append(("text", content))
                }
                choice += [("logprobs", nil), ("finish_reason", nil)]
                if job.returnTokenIds {
                    choice.append(("token_ids", [.int(token)]))
                    if first { choice.append(("prompt_token_ids", JSONValue(job.request.prompt))) }
                }
                first = false
                try await writer.write(event: chunk(choices: [.object(choice)]))
            case .failed(let error):
                try await writer.write(event: error.body.text)
            case .finished(let generation):
                guard let reason = Self.reason(generation.finishReason) else {
                    try await writer.write(event: Self.cancelled(bridge).body.text)
                    break
                }
                let choice: JSONValue = [
                    "index": 0, isChat ? "delta" : "text": isChat ? [:] : "", "logprobs": nil,
                    "finish_reason": .string(reason),
                ]
                try await writer.write(event: chunk(choices: [choice]))
                if job.includeUsage {
                    try await writer.write(event: chunk(choices: [], usage: usage(generation.ids.count)))
                }
            }
        }
        try await writer.write(event: "[DONE]")
        try await writer.finish(nil)
    }

    private func chunk(choices: [JSONValue], usage: JSONValue = nil) -> String {
        var object: [(String, JSONValue)] = [
            ("id", .string(id)), ("object", isChat ? "chat.completion.chunk" : "text_completion"),
            ("created", .int(created)), ("model", .string(model)), ("choices", .array(choices)),
        ]
        if job.includeUsage { object.append(("usage", usage)) }
        return JSONValue.object(object).text
    }

    private func usage(_ generated: Int) -> JSONValue {
        let prompt = job.request.prompt.count
        return [
            "prompt_tokens": .int(prompt), "completion_tokens": .int(generated),
            "total_tokens": .int(prompt + generated),
        ]
    }

    /// Why a request ended without finishing: the server shut down, or its client went away.
    static func cancelled(_ bridge: ServerBridge) -> APIError {
        bridge.isDraining
            ? .unavailable("the server is shutting down", code: "shutting_down")
            : .unavailable("the request was cancelled", code: "cancelled")
    }

    /// OpenAI's finish reasons: an EOS id or a stop string is "stop"; nil for a request that
    /// ended without finishing (cancelled, or non-finite logits: no token could be chosen).
    static func reason(_ reason: FinishReason) -> String? {
        switch reason {
        case .eos, .stop: return "stop"
        case .length: return "length"
        case .cancelled, .nonFiniteLogits: return nil
        }
    }
}

extension ResponseBodyWriter {
    /// One server-sent event: `data: …` and a blank line.
    mutating func write(event data: String) async throws {
        try await write(ByteBuffer(string: "data: \(data)\n\n"))
    }
}

/// The request context: Hummingbird's core storage plus the connection, whose closing cancels
/// the request it carries.
struct ServeContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Every error leaves as an OpenAI error object with its status: our `APIError`s, Hummingbird's
/// (unknown path → 404, a known path with the wrong method → 405) and anything else (500).
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    static let routes: Set = ["/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            if error.status == .notFound && Self.routes.contains(request.uri.path) {
                return APIError(
                    status: .methodNotAllowed, message: "\(request.method) is not allowed on \(request.uri.path).",
                    type: "invalid_request_error", param: nil, code: "method_not_allowed"
                ).response
            }
            if error.status == .notFound { return APIError.notFound(request.uri.path).response }
            return APIError(
                status: error.status, message: error.body ?? error.status.reasonPhrase,
                type: error.status.code < 500 ? "invalid_request_error" : "server_error", param: nil, code: nil
            ).response
        } catch {
            return APIError.internalError("\(error)").response
        }
    }
}
