import Foundation
import Nemotron

/// A completion or chat completion request, checked and tokenized: what the serving loop runs
/// and how the answer is shaped.
struct CompletionJob: Sendable {
    enum Kind: Sendable {
        case completion
        case chat
    }

    var kind: Kind
    var request: Nemotron.Request
    var stream: Bool
    /// `stream_options.include_usage`: a last chunk with the usage before `[DONE]`.
    var includeUsage: Bool
    /// `return_token_ids` (as vLLM): each choice carries `prompt_token_ids` and `token_ids`.
    var returnTokenIds: Bool
}

/// Reads OpenAI request bodies (`/v1/completions`, `/v1/chat/completions`) as the API documents
/// them, refusing with a 400 that names the parameter whatever this server cannot honour:
/// malformed JSON, wrong types, out-of-range values, `n` > 1, log probabilities, a prompt that
/// does not fit `max_model_len`. Unknown keys are ignored, as vLLM does.
struct RequestParser: Sendable {
    let modelName: String
    let tokenizer: Tokenizer?
    /// The checkpoint's chat template, or why there is none.
    let template: Result<ChatTemplate, any Error>
    let vocabSize: Int
    let maxModelLen: Int
    /// max_new_tokens, temperature, top_k, top_p, seed, stop and ignore_eos when a request
    /// leaves them out.
    let defaults: RunConfig

    func completion(_ body: String) throws(APIError) -> CompletionJob {
        let object = try Self.object(body)
        let prompt: [Int]
        switch object["prompt"] {
        case nil: throw .invalid("'prompt' is a required property", param: "prompt")
        case let value? where value.stringValue != nil: prompt = try encode(value.stringValue!, special: true)
        case let value? where value.listValue != nil:
            let items = value.listValue!
            if let ids = Self.tokenIds(items) {
                prompt = ids
            } else if items.count == 1, let text = items[0].stringValue {
                prompt = try encode(text, special: true)
            } else if items.count == 1, let inner = items[0].listValue, let ids = Self.tokenIds(inner) {
                prompt = ids
            } else if items.count > 1 && items.allSatisfy({ $0.stringValue != nil || $0.listValue != nil }) {
                throw .invalid("this server takes one prompt per request; send the prompts separately", param: "prompt")
            } else {
                throw .invalid(
                    "'prompt' must be a string, a list of token ids, or a list of one of those", param: "prompt")
            }
        default: throw .invalid("'prompt' must be a string or a list of token ids", param: "prompt")
        }
        if let echo = object["echo"], echo.boolValue == true {
            throw .invalid("'echo' is not supported", param: "echo")
        }
        if let bestOf = object["best_of"], !bestOf.isNone, bestOf.integer != 1 {
            throw .invalid("'best_of' must be 1", param: "best_of")
        }
        if let logprobs = object["logprobs"], !logprobs.isNone, logprobs.integer != 0 {
            throw .invalid("'logprobs' is not supported", param: "logprobs")
        }
        if let suffix = object["suffix"], !suffix.isNone {
            throw .invalid("'suffix' is not supported", param: "suffix")
        }
        return try job(.completion, object, prompt: prompt, maxTokensKeys: ["max_tokens"])
    }

    func chat(_ body: String) throws(APIError) -> CompletionJob {
        let object = try Self.object(body)
        let template: ChatTemplate
        switch self.template {
        case .success(let loaded): template = loaded
        case .failure(let error):
            throw .invalid("this model has no usable chat template: \(error)", param: nil, code: "no_chat_template")
        }
        guard let messagesValue = object["messages"] else {
            throw .invalid("'messages' is a required property", param: "messages")
        }
        let messages: [JinjaValue]
        do {
            messages = try ChatTemplate.messages(fromJSON: messagesValue.jsonText ?? "", source: "messages")
        } catch {
            throw .invalid("\(error)", param: "messages")
        }
        var kwargs: [String: JinjaValue] = [:]
        if let value = object["chat_template_kwargs"], !value.isNone {
            do {
                kwargs = try ChatTemplate.keywordArguments(
                    fromJSON: value.jsonText ?? "", source: "chat_template_kwargs")
            } catch {
                throw .invalid("\(error)", param: "chat_template_kwargs")
            }
        }
        var tools: [JinjaValue]?
        if let value = object["tools"], !value.isNone {
            guard let list = value.listValue, list.allSatisfy({ $0.dictValue != nil }) else {
                throw .invalid("'tools' must be a list of objects", param: "tools")
            }
            tools = list
        }
        if let logprobs = object["logprobs"], logprobs.boolValue == true {
            throw .invalid("'logprobs' is not supported", param: "logprobs")
        }
        let addGenerationPrompt = try Self.bool(object, "add_generation_prompt") ?? true
        let text: String
        do {
            text = try template.render(
                messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt, kwargs: kwargs)
        } catch {
            throw .invalid("the chat template refused the conversation: \(error)", param: "messages")
        }
        let prompt = try encode(text, special: false)
        return try job(.chat, object, prompt: prompt, maxTokensKeys: ["max_completion_tokens", "max_tokens"])
    }

    // MARK: - Shared parameters

    private func job(_ kind: CompletionJob.Kind, _ object: JinjaValue, prompt: [Int], maxTokensKeys: [String])
        throws(APIError) -> CompletionJob
    {
        if let model = object["model"], !model.isNone {
            guard let name = model.stringValue else { throw .invalid("'model' must be a string", param: "model") }
            guard name == modelName else { throw .modelNotFound(name) }
        }
        if let n = object["n"], !n.isNone, n.integer != 1 {
            throw .invalid("'n' must be 1: this server returns one choice per request", param: "n")
        }
        guard !prompt.isEmpty else { throw .invalid("the prompt is empty", param: "prompt") }
        if let bad = prompt.first(where: { !(0..<vocabSize).contains($0) }) {
            throw .invalid("token id \(bad) is outside the vocabulary 0..<\(vocabSize)", param: "prompt")
        }
        var maxTokens: Int?
        for key in maxTokensKeys {
            if let value = try Self.int(object, key) {
                guard value >= 1 else { throw .invalid("'\(key)' must be at least 1, got \(value)", param: key) }
                maxTokens = value
                break
            }
        }
        let room = maxModelLen - prompt.count
        let budget = maxTokens ?? min(defaults.maxNewTokens, room)
        guard prompt.count + budget <= maxModelLen, budget >= 1 else {
            throw .invalid(
                "This model's maximum context length is \(maxModelLen) tokens. However, you requested "
                    + "\(prompt.count + max(budget, 1)) tokens (\(prompt.count) in the prompt, \(max(budget, 1)) for "
                    + "the completion). Please reduce the length of the prompt or completion.",
                param: kind == .chat ? "messages" : "prompt", code: "context_length_exceeded")
        }
        let temperature = try Self.number(object, "temperature") ?? defaults.temperature
        guard (0...2).contains(temperature) else {
            throw .invalid("'temperature' must be between 0 and 2, got \(temperature)", param: "temperature")
        }
        let topP = try Self.number(object, "top_p") ?? defaults.topP
        guard topP > 0 && topP <= 1 else {
            throw .invalid("'top_p' must be in (0, 1], got \(topP)", param: "top_p")
        }
        let topK = try Self.int(object, "top_k") ?? defaults.topK
        guard topK >= -1 else { throw .invalid("'top_k' must be -1, 0 (off) or positive, got \(topK)", param: "top_k") }
        let seed: UInt64
        if let given = try Self.int(object, "seed") {
            seed = UInt64(bitPattern: Int64(given))
        } else {
            seed = temperature == 0 ? UInt64(defaults.seed) : UInt64.random(in: 0...UInt64.max)
        }
        let stop = try Self.stop(object) ?? defaults.stop
        if !stop.isEmpty && tokenizer == nil {
            throw .invalid("'stop' needs the checkpoint's tokenizer, which it does not have", param: "stop")
        }
        let stream = try Self.bool(object, "stream") ?? false
        var includeUsage = false
        if let options = object["stream_options"], !options.isNone {
            guard stream else {
                throw .invalid("'stream_options' is only allowed with stream", param: "stream_options")
            }
            guard options.dictValue != nil else {
                throw .invalid("'stream_options' must be an object", param: "stream_options")
            }
            includeUsage = try Self.bool(options, "include_usage", path: "stream_options.include_usage") ?? false
        }
        let request = Nemotron.Request(
            prompt: prompt, maxNewTokens: budget,
            sampling: SamplingParameters(
                temperature: Float(temperature), topK: max(topK, 0), topP: Float(topP), seed: seed),
            stop: stop, ignoreEOS: try Self.bool(object, "ignore_eos") ?? defaults.ignoreEOS)
        return CompletionJob(
            kind: kind, request: request, stream: stream, includeUsage: includeUsage,
            returnTokenIds: try Self.bool(object, "return_token_ids") ?? false)
    }

    private func encode(_ text: String, special: Bool) throws(APIError) -> [Int] {
        guard let tokenizer else {
            throw .invalid("this model has no tokenizer.json: give the prompt as token ids", param: "prompt")
        }
        return tokenizer.encode(text, addSpecialTokens: special)
    }

    // MARK: - Typed reads

    static func object(_ body: String) throws(APIError) -> JinjaValue {
        let value: JinjaValue
        do { value = try JinjaValue(json: body) } catch {
            throw .invalid("the body is not valid JSON: \(error)")
        }
        guard value.dictValue != nil else { throw .invalid("the body must be a JSON object") }
        return value
    }

    /// A list of integers (token ids), or nil.
    static func tokenIds(_ items: [JinjaValue]) -> [Int]? {
        let ids = items.compactMap(\.integer)
        return !items.isEmpty && ids.count == items.count ? ids : nil
    }

    static func int(_ object: JinjaValue, _ key: String) throws(APIError) -> Int? {
        guard let value = object[key], !value.isNone else { return nil }
        guard let integer = value.integer else {
            throw .invalid("'\(key)' must be an integer, got \(value.jsonText ?? "a non-JSON value")", param: key)
        }
        return integer
    }

    static func number(_ object: JinjaValue, _ key: String) throws(APIError) -> Double? {
        guard let value = object[key], !value.isNone else { return nil }
        guard let number = value.number, number.isFinite else {
            throw .invalid("'\(key)' must be a number, got \(value.jsonText ?? "a non-JSON value")", param: key)
        }
        return number
    }

    static func bool(_ object: JinjaValue, _ key: String, path: String? = nil) throws(APIError) -> Bool? {
        guard let value = object[key], !value.isNone else { return nil }
        guard let flag = value.boolValue else {
            throw .invalid(
                "'\(path ?? key)' must be true or false, got \(value.jsonText ?? "a non-JSON value")",
                param: path ?? key)
        }
        return flag
    }

    /// `stop`: a string or a list of up to 16 non-empty strings.
    static func stop(_ object: JinjaValue) throws(APIError) -> [String]? {
        guard let value = object["stop"], !value.isNone else { return nil }
        let strings: [String]
        if let text = value.stringValue {
            strings = [text]
        } else if let list = value.listValue, list.allSatisfy({ $0.stringValue != nil }) {
            strings = list.map { $0.stringValue! }
        } else {
            throw .invalid("'stop' must be a string or a list of strings", param: "stop")
        }
        guard strings.count <= 16 else { throw .invalid("'stop' takes at most 16 strings", param: "stop") }
        guard !strings.contains("") else { throw .invalid("'stop' strings must not be empty", param: "stop") }
        return strings
    }
}

extension JinjaValue {
    /// A scalar JSON number's text ("3", "0.5", "NaN"); nil for anything else.
    private var numberText: String? {
        guard boolValue == nil, stringValue == nil, listValue == nil, dictValue == nil, !isNone else { return nil }
        return jsonText
    }

    /// A JSON integer (not a float, not a bool).
    var integer: Int? { numberText.flatMap { Int($0) } }

    /// A JSON number, integer or float.
    var number: Double? { numberText.flatMap { Double($0) } }
}
