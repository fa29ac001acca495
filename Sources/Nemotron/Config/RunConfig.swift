import Foundation
import Yams

/// The effective settings of a run: built once from the defaults below, then a YAML config
/// file, then command-line flags, each layer range-checked as it is applied. Every key is
/// declared once, in `RunConfig.keys`: its name, flag, help, field and check. Adding a key
/// takes that declaration plus its use.
///
/// ```yaml
/// model: ../models/tiny        # checkpoint directory; relative to the config file
/// max_new_tokens: 32
/// temperature: 0               # 0 = greedy
/// prompts: ["Hello", {tokens: [1, 2]}]
/// stop: ["\n\n"]
/// compute_dtype: f32           # f32 (exact) or bf16
/// fuse_allreduce_norm: auto    # auto | on | off
/// ```
public struct RunConfig: Sendable, Equatable {
    public var model = ""
    /// Compute threads per process; 0: the CPUs this process may run on, shared with its node's ranks.
    public var threads = 0
    public var maxNewTokens = 32
    public var temperature = 0.0
    public var topK = 0
    public var topP = 1.0
    public var seed = 0
    /// A prompt given as token ids (nil: none; an empty list is an error when run).
    public var tokens: [Int]?
    public var prompts: [Prompt] = []
    public var stop: [String] = []
    /// Run every request to its token budget, whatever it generates (benchmarks).
    public var ignoreEOS = false
    /// Render prompts through the checkpoint's chat template.
    public var chat = false
    /// A system turn for chat prompts given as text ("": none).
    public var system = ""
    /// A JSON file holding one OpenAI-style conversation ("": none).
    public var messages = ""
    /// A JSON object of keyword arguments for the chat template ("": none).
    public var chatTemplateKwargs = ""
    public var computeDType = ComputeDType.auto
    /// 0: the number of MPI processes; otherwise it must equal it.
    public var tensorParallelSize = 0
    public var fuseAllReduceNorm = FuseAllReduceNorm.auto
    public var allReduceStrategy = AllReduceStrategy.auto
    public var enableAttentionDP = false
    public var prefillChunk = 512
    /// Quantize float linear weights as they load.
    public var quantize = LoadQuantization.none
    /// Requests running together in one batch (per rank under attention data parallelism).
    public var maxBatchSize = 64
    /// Tokens in one forward pass: decode rows plus prefill chunks.
    public var maxNumTokens = 8192
    /// `serve`: the address and port to listen on (port 0: any free port, printed at start).
    public var host = "127.0.0.1"
    public var port = 8000
    /// `serve`: requests accepted beyond the running batches; more are refused with 503.
    public var maxQueue = 256
    /// `serve`: prompt tokens plus max_tokens of one request.
    public var maxModelLen = 8192
    /// `serve`: the largest request body.
    public var maxRequestBytes = 1 << 20
    /// `serve`: the model name clients give ("": the checkpoint directory's name).
    public var servedModelName = ""

    public init() {}

    /// Every key, in the order `inspect` prints them.
    public static let keys: [ConfigKey] = [
        .init(
            "model", \.model, help: "Checkpoint directory (config.json, *.safetensors); relative to the config file.",
            parse: { value, source in try source.path(String.configValue(value, key: "model", source: source)) }),
        .init(
            "threads", \.threads,
            help: "Compute threads per process (0: the CPUs it may run on / the ranks sharing them).",
            check: .threads),
        .init("max_new_tokens", \.maxNewTokens, help: "Maximum tokens to generate.", check: .atLeast(0)),
        .init("temperature", \.temperature, help: "Sampling temperature; 0 is greedy.", check: .atLeast(0)),
        .init("top_k", \.topK, help: "Keep only the k most likely tokens; 0 is off.", check: .atLeast(0)),
        .init(
            "top_p", \.topP, help: "Keep the smallest set of tokens with this total probability; 1 is off.",
            check: .probability),
        .init("seed", \.seed, help: "Random seed for sampling.", check: .atLeast(0)),
        .init("tokens", \.tokens, help: "Prompt token ids, comma-separated (e.g. 1,2,3)."),
        .init(
            "prompts", \.prompts, flag: "prompt",
            help: "Prompt text; repeat the flag for several prompts, generated together."),
        .init(
            "stop", \.stop, help: "Stop when the generated text contains this string (repeatable); it is not printed."),
        .init(
            "ignore_eos", \.ignoreEOS,
            help: "Keep generating past end-of-sequence tokens, up to max_new_tokens (for benchmarks)."),
        .init(
            "chat", \.chat,
            help: "Wrap each prompt in the checkpoint's chat template as one user turn (rendered, then tokenized "
                + "without adding special tokens again)."),
        .init("system", \.system, help: "With chat: a system turn before each prompt."),
        .init(
            "messages", \.messages,
            help: "With chat: a JSON file with one conversation, a list of {\"role\", \"content\"} objects.",
            parse: { value, source in try source.path(String.configValue(value, key: "messages", source: source)) }),
        .init(
            "chat_template_kwargs", \.chatTemplateKwargs,
            help: "With chat: a JSON object of template keyword arguments, e.g. {\"enable_thinking\": false}.",
            parse: { value, source in try jsonText(value, key: "chat_template_kwargs", source: source) }),
        .init(
            "compute_dtype", \.computeDType,
            help: "Activation precision: auto (the fastest for the weights), f32 exact, bf16 for prefill GEMMs "
                + "and decode batches, int8 also for decode against int8/int4/nvfp4 weights."),
        .init(
            "quantize", \.quantize,
            help: "Quantize the linear weights of a bf16/f16/f32 checkpoint as they load (each rank its own slice): "
                + "int8 or int4 in blocks of 32."),
        .init(
            "tensor_parallel_size", \.tensorParallelSize, help: "If not 0, must equal the number of MPI processes.",
            check: .atLeast(1, orZero: true)),
        .init(
            "fuse_allreduce_norm", \.fuseAllReduceNorm,
            help: "Fuse each layer's AllReduce with the residual add and next RMSNorm."),
        .init("allreduce_strategy", \.allReduceStrategy, help: "How block-boundary reductions run."),
        .init(
            "enable_attention_dp", \.enableAttentionDP, flag: "attention-dp",
            help: "Attention data parallelism: each rank serves its own prompts; MoE experts are split over the "
                + "ranks."),
        .init(
            "prefill_chunk", \.prefillChunk,
            help: "Prompt tokens per sequence in one prefill pass; smaller bounds memory.",
            check: .atLeast(1)),
        .init(
            "max_batch_size", \.maxBatchSize,
            help: "Requests running together (per rank under attention DP); the others wait their turn.",
            check: .atLeast(1)),
        .init(
            "max_num_tokens", \.maxNumTokens,
            help: "Tokens in one forward pass: a decode row per running request, then prefill chunks.",
            check: .atLeast(1)),
        .init("host", \.host, help: "serve: the address to listen on."),
        .init("port", \.port, help: "serve: the TCP port to listen on (0: any free port).", check: .within(0...65535)),
        .init(
            "max_queue", \.maxQueue,
            help: "serve: requests accepted beyond the running batches; more get 503.", check: .atLeast(0)),
        .init(
            "max_model_len", \.maxModelLen,
            help: "serve: prompt tokens plus max_tokens of one request; longer requests get 400.",
            check: .atLeast(2)),
        .init(
            "max_request_bytes", \.maxRequestBytes, help: "serve: the largest request body; larger ones get 413.",
            check: .atLeast(1024)),
        .init(
            "served_model_name", \.servedModelName,
            help: "serve: the model name of the API (default: the checkpoint directory's name)."),
    ]

    public static var keyNames: [String] { keys.map(\.name) }

    /// The defaults with a YAML file's keys applied. Unknown keys are rejected by name.
    public init(path: String) throws {
        self.init()
        try apply(file: path)
    }

    /// Applies a YAML config file on top of these settings.
    public mutating func apply(file path: String) throws {
        let url = URL(fileURLWithPath: path).absoluteURL
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw NemotronError.fileMissing(path: path, what: "a YAML run config")
        }
        try apply(yaml: text, path: path)
    }

    /// Applies a YAML config's text; `path` names it in errors and anchors relative paths.
    mutating func apply(yaml text: String, path: String) throws {
        let url = URL(fileURLWithPath: path).absoluteURL
        let parsed: Any?
        parsed = try Self.loadYAML(text, path: path)
        guard let values = parsed as? [String: Any] else {
            if parsed == nil { return }
            throw NemotronError.fileUnreadable(path: path, reason: "the top level must be a mapping of keys to values")
        }
        let unknown = values.keys.filter { !Self.keyNames.contains($0) }.sorted()
        if !unknown.isEmpty { throw NemotronError.unknownConfigKeys(path: path, keys: unknown, allowed: Self.keyNames) }
        let source = ConfigSource.file(path: path, directory: url.deletingLastPathComponent())
        if values.keys.contains(where: Self.promptKeys.contains) { clearPrompts() }
        for key in Self.keys { if let value = values[key.name] { try key.apply(.yaml(value), &self, source) } }
    }

    /// Applies command-line flags (`--flag value`, repeatable list flags, bare boolean flags)
    /// on top of these settings; an unknown flag or a bad value is an error naming it.
    /// `extraPrompts` (a prompt file's) join the flags' prompts.
    public mutating func apply(flags arguments: [String], extraPrompts: [Prompt] = []) throws {
        let promptFlags = Self.keys.filter { Self.promptKeys.contains($0.name) }.map { "--" + $0.flag }
        if !extraPrompts.isEmpty || arguments.contains(where: promptFlags.contains) { clearPrompts() }
        prompts += extraPrompts
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            guard argument.hasPrefix("--"), let key = Self.keys.first(where: { "--" + $0.flag == argument }) else {
                throw NemotronError.invalidArgument(
                    name: argument, value: "(unknown)",
                    expected:
                        "a known option: see --help (settings flags: "
                        + "\(Self.keys.map { "--" + $0.flag }.joined(separator: ", ")))"
                )
            }
            if key.isSwitch {
                try key.apply(.flag("true"), &self, .commandLine)
                i += 1
                continue
            }
            guard i + 1 < arguments.count else {
                throw NemotronError.invalidArgument(
                    name: argument, value: "(missing)", expected: "a value after \(argument)")
            }
            try key.apply(.flag(arguments[i + 1]), &self, .commandLine)
            i += 2
        }
    }

    /// The keys that give prompts: a layer (file or flags) that sets any of them replaces the
    /// prompts of the layers below it.
    static let promptKeys: Set<String> = ["prompts", "tokens"]

    private mutating func clearPrompts() {
        prompts = []
        tokens = nil
    }

    /// The run's prompts: the prompt list, then the token-id prompt if any.
    public var allPrompts: [Prompt] { prompts + (tokens.map { [.tokens($0)] } ?? []) }

    /// Each key and its effective value, for `inspect`.
    public var described: [(key: String, value: String)] { Self.keys.map { ($0.name, $0.describe(self)) } }

    /// Help lines for the settings flags, generated from the keys.
    public static var flagHelp: String {
        "Settings (flags override --config file keys):\n"
            + keys.map { key in
                let flag = "--\(key.flag)\(key.isSwitch ? "" : " <\(key.expected)>")"
                return "  \(flag.padding(toLength: 40, withPad: " ", startingAt: 0)) \(key.help) (key \(key.name))"
            }.joined(separator: "\n")
    }

    /// The sampling parameters of this run.
    public var sampling: SamplingParameters {
        SamplingParameters(temperature: Float(temperature), topK: topK, topP: Float(topP), seed: UInt64(seed))
    }

    /// A request for `prompt` with this run's defaults: token budget, sampling and stop strings.
    public func request(prompt: [Int], keepLogits: Bool = false) -> Request {
        Request(prompt: prompt, maxNewTokens: maxNewTokens, sampling: sampling, stop: stop, keepLogits: keepLogits)
    }
}

/// A YAML mapping as JSON text, or a flag's text as it is.
private func jsonText(_ input: ConfigInput, key: String, source: ConfigSource) throws -> String {
    switch input {
    case .flag(let text): return text
    case .yaml(let text as String): return text
    case .yaml(let value):
        guard JSONSerialization.isValidJSONObject(value),
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
        else {
            throw NemotronError.configValue(
                path: source.name, key: key, value: "\(value)", expected: "a mapping (JSON object)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Where a setting comes from: errors name it, and relative paths resolve against a file's directory.
public enum ConfigSource: Sendable {
    case file(path: String, directory: URL)
    case commandLine

    var name: String {
        switch self {
        case .file(let path, _): return path
        case .commandLine: return "command line"
        }
    }

    /// A path as given, resolved against the config file's directory when relative.
    func path(_ text: String) -> String {
        if text.hasPrefix("/") { return URL(fileURLWithPath: text).standardized.path }
        switch self {
        case .file(_, let directory): return directory.appendingPathComponent(text).standardized.path
        case .commandLine: return URL(fileURLWithPath: text).standardized.path
        }
    }
}

/// A raw setting: a parsed YAML value, or a flag's text.
public enum ConfigInput {
    case yaml(Any)
    case flag(String)
}

/// One settings key: name, flag, help, and how to parse, check, store and show its value.
public struct ConfigKey: Sendable {
    public let name: String
    public let flag: String
    public let help: String
    /// What the value must look like, for help and errors.
    public let expected: String
    /// A boolean flag given without a value.
    public let isSwitch: Bool
    let apply: @Sendable (ConfigInput, inout RunConfig, ConfigSource) throws -> Void
    let describe: @Sendable (RunConfig) -> String

    /// A key stored at `field`; `flag` defaults to the name with dashes; `parse` overrides the
    /// type's own parsing.
    init<Value: ConfigValue>(
        _ name: String, _ field: WritableKeyPath<RunConfig, Value> & Sendable, flag: String? = nil,
        help: String, check: ConfigCheck<Value>? = nil,
        parse: (@Sendable (ConfigInput, ConfigSource) throws -> Value)? = nil
    ) {
        self.name = name
        self.flag = flag ?? name.replacingOccurrences(of: "_", with: "-")
        self.help = help
        expected = check?.expected ?? Value.expected
        isSwitch = Value.self == Bool.self
        apply = { input, config, source in
            let value = try parse?(input, source) ?? Value.configValue(input, key: name, source: source)
            if let check, !check.accepts(value) {
                throw NemotronError.configValue(
                    path: source.name, key: name, value: "\(value)", expected: check.expected)
            }
            config[keyPath: field] = Value.merging(config[keyPath: field], value, from: input)
        }
        describe = { config in Value.describe(config[keyPath: field]) }
    }
}

/// A range check of a key's value.
public struct ConfigCheck<Value>: Sendable {
    let expected: String
    let accepts: @Sendable (Value) -> Bool
}

extension ConfigCheck where Value == Int {
    static func atLeast(_ minimum: Int, orZero: Bool = false) -> ConfigCheck {
        ConfigCheck(expected: "an integer >= \(minimum)" + (orZero ? " (or 0: automatic)" : "")) {
            $0 >= minimum || (orZero && $0 == 0)
        }
    }
}

extension ConfigCheck where Value == Int {
    static func within(_ range: ClosedRange<Int>) -> ConfigCheck {
        ConfigCheck(expected: "an integer in \(range.lowerBound)...\(range.upperBound)") { range.contains($0) }
    }

    /// 0 (automatic) or 1...`ThreadPool.maxThreads`: far more threads than cores only slow a
    /// run, and enough of them exhaust the machine's thread limit.
    static var threads: ConfigCheck {
        let limit = ThreadPool.maxThreads
        return ConfigCheck(
            expected:
                "an integer >= 1 (or 0: automatic) and at most \(limit) (8 per CPU; this machine has "
                + "\(limit / 8))"
        ) { (0...limit).contains($0) }
    }
}

extension ConfigCheck where Value == Double {
    static func atLeast(_ minimum: Double) -> ConfigCheck {
        ConfigCheck(expected: "a number >= \(Int(minimum))") { $0 >= minimum }
    }
    static let probability = ConfigCheck(expected: "a number in (0, 1] (1 = off)") { $0 > 0 && $0 <= 1 }
}

/// A type a settings key can hold: parsed from YAML or from a flag's text.
public protocol ConfigValue: Sendable {
    static var expected: String { get }
    static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> Self
    /// How a new value combines with the current one: replaces it, except that repeated list
    /// flags accumulate.
    static func merging(_ current: Self, _ new: Self, from input: ConfigInput) -> Self
    static func describe(_ value: Self) -> String
}

extension ConfigValue {
    public static func merging(_ current: Self, _ new: Self, from input: ConfigInput) -> Self { new }
    public static func describe(_ value: Self) -> String { "\(value)" }

    static func mismatch(_ input: ConfigInput, key: String, source: ConfigSource) -> NemotronError {
        switch input {
        case .yaml(let value): return .configValue(path: source.name, key: key, value: "\(value)", expected: expected)
        case .flag(let text):
            return .invalidArgument(
                name: "--" + key.replacingOccurrences(of: "_", with: "-"), value: "'\(text)'", expected: expected)
        }
    }
}

extension Int: ConfigValue {
    public static let expected = "an integer"
    public static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> Int {
        switch input {
        case .yaml(let value as Int): return value
        case .flag(let text): if let value = Int(text) { return value }
        default: break
        }
        throw mismatch(input, key: key, source: source)
    }
}

extension Double: ConfigValue {
    public static let expected = "a number"
    public static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> Double {
        switch input {
        case .yaml(let value as Double): return value
        case .yaml(let value as Int): return Double(value)
        case .flag(let text): if let value = Double(text) { return value }
        default: break
        }
        throw mismatch(input, key: key, source: source)
    }
}

extension Bool: ConfigValue {
    public static let expected = "true or false"
    public static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> Bool {
        switch input {
        case .yaml(let value as Bool): return value
        case .flag(let text): if let value = Bool(text) { return value }
        default: break
        }
        throw mismatch(input, key: key, source: source)
    }
}

extension String: ConfigValue {
    public static let expected = "a string"
    public static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> String {
        switch input {
        case .yaml(let value as String): return value
        case .flag(let text): return text
        default: throw mismatch(input, key: key, source: source)
        }
    }
    public static func describe(_ value: String) -> String { value.isEmpty ? "(none)" : value }
}

extension Array: ConfigValue where Element: ListElement {
    public static var expected: String { Element.listExpected }
    public static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> [Element] {
        switch input {
        case .yaml(let value):
            guard let items = value as? [Any] else { throw mismatch(input, key: key, source: source) }
            return try items.enumerated().map { index, item in
                guard let element = try Element.element(item, source: "\(source.name): \(key)[\(index)]") else {
                    throw mismatch(input, key: key, source: source)
                }
                return element
            }
        case .flag(let text):
            return try Element.elements(flag: text, key: key)
        }
    }
    public static func merging(_ current: [Element], _ new: [Element], from input: ConfigInput) -> [Element] {
        if case .flag = input, Element.flagsAccumulate { return current + new }
        return new
    }
    public static func describe(_ value: [Element]) -> String { value.isEmpty ? "(none)" : "\(value)" }
}

extension Optional: ConfigValue where Wrapped: ConfigValue {
    public static var expected: String { Wrapped.expected }
    public static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> Wrapped? {
        try Wrapped.configValue(input, key: key, source: source)
    }
    public static func describe(_ value: Wrapped?) -> String { value.map(Wrapped.describe) ?? "(none)" }
}

/// An element of a list-valued key.
public protocol ListElement: Sendable {
    static var listExpected: String { get }
    /// Repeated flags add elements (true) or the last one wins (false).
    static var flagsAccumulate: Bool { get }
    static func element(_ yaml: Any, source: String) throws -> Self?
    static func elements(flag text: String, key: String) throws -> [Self]
}

extension Int: ListElement {
    public static let listExpected = "a list of integers"
    public static let flagsAccumulate = false
    public static func element(_ yaml: Any, source: String) throws -> Int? { JSONObject.exactInteger(yaml) }
    /// `--tokens 1,2,3`
    public static func elements(flag text: String, key: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        if parts == [""] { return [] }
        return try parts.map {
            guard let id = Int($0) else {
                throw NemotronError.invalidArgument(
                    name: "--\(key)", value: "'\($0)'", expected: "comma-separated integers")
            }
            return id
        }
    }
}

extension String: ListElement {
    public static let listExpected = "a list of strings"
    public static let flagsAccumulate = true
    public static func element(_ yaml: Any, source: String) throws -> String? { yaml as? String }
    public static func elements(flag text: String, key: String) throws -> [String] { [text] }
}

extension Prompt: ListElement {
    public static let listExpected = "a list of prompts: strings, or objects with \"prompt\" or \"tokens\""
    public static let flagsAccumulate = true
    public static func element(_ yaml: Any, source: String) throws -> Prompt? { try Prompt(yaml, source: source) }
    public static func elements(flag text: String, key: String) throws -> [Prompt] { [.text(text)] }
}

/// Enumerations are parsed by their raw value, and errors list the allowed ones.
extension ConfigValue where Self: RawRepresentable & CaseIterable, RawValue == String {
    public static var expected: String { "one of \(allCases.map(\.rawValue).joined(separator: ", "))" }
    public static func configValue(_ input: ConfigInput, key: String, source: ConfigSource) throws -> Self {
        let text: String?
        switch input {
        case .yaml(let value): text = value as? String
        case .flag(let value): text = value
        }
        guard let text, let value = Self(rawValue: text) else {
            let shown: String
            switch input {
            case .yaml(let value): shown = "\(value)"
            case .flag(let value): shown = value
            }
            throw NemotronError.configValue(path: source.name, key: key, value: shown, expected: expected)
        }
        return value
    }
    public static func describe(_ value: Self) -> String { value.rawValue }
}

extension ComputeDType: ConfigValue {}
extension LoadQuantization: ConfigValue {}
extension FuseAllReduceNorm: ConfigValue {}
extension AllReduceStrategy: ConfigValue {}

/// The format float linear weights are quantized into as they load (config `quantize`).
public enum LoadQuantization: String, Sendable, CaseIterable {
    case none
    case int8
    case int4

    public var format: WeightFormat? {
        switch self {
        case .none: return nil
        case .int8: return .int8
        case .int4: return .int4
        }
    }
}

/// One prompt: text (tokenized with the checkpoint's tokenizer) or token ids.
public enum Prompt: Sendable, Equatable {
    case text(String)
    case tokens([Int])

    /// From a config or JSON-lines entry: a string, or an object with `prompt` or `tokens`
    /// (integers: `1.9` and `true` are refused, not read as 1).
    public init(_ value: Any, source: String) throws {
        if let text = value as? String {
            self = .text(text)
        } else if let object = value as? [String: Any], let text = object["prompt"] as? String {
            self = .text(text)
        } else if let object = value as? [String: Any], let ids = object["tokens"] as? [Any],
            case let ints = ids.compactMap(JSONObject.exactInteger), ints.count == ids.count
        {
            self = .tokens(ints)
        } else {
            throw NemotronError.invalidArgument(
                name: source, value: "\(value)",
                expected: "a string, or an object with a \"prompt\" string or a \"tokens\" list of integers")
        }
    }

    /// A prompt file: one prompt per line (`\n` or `\r\n`; empty lines skipped), either plain
    /// text or, for a line starting with `{`, a JSON object with `prompt` or `tokens`. The file
    /// must be UTF-8; a `{` line that is not valid JSON is an error, not a text prompt.
    public static func file(_ path: String) throws -> [Prompt] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            if !FileManager.default.fileExists(atPath: path) {
                throw NemotronError.fileMissing(path: path, what: "a prompt file (one prompt per line, or JSON lines)")
            }
            throw NemotronError.fileUnreadable(path: path, reason: Self.reason(error))
        }
        var prompts: [Prompt] = []
        for (number, bytes) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
        {
            let source = "\(path) line \(number + 1)"
            let line = bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes
            guard !line.isEmpty else { continue }
            guard let text = String(validating: line, as: UTF8.self) else {
                let valid = String(decoding: line, as: UTF8.self).unicodeScalars.prefix { $0 != "\u{FFFD}" }
                throw NemotronError.fileUnreadable(
                    path: path,
                    reason: "line \(number + 1) is not UTF-8 text (invalid byte after \(valid.count) valid "
                        + "characters); prompt files must be UTF-8")
            }
            guard text.hasPrefix("{") else {
                prompts.append(.text(text))
                continue
            }
            let object: Any
            do { object = try JSONParser.parse(Data(line), path: source) } catch let NemotronError.fileUnreadable(
                _, reason)
            {
                throw NemotronError.fileUnreadable(
                    path: path,
                    reason: "line \(number + 1) starts with '{' but is not a JSON object: \(reason) (a text "
                        + "prompt starting with '{' must be written as {\"prompt\": \"...\"})")
            }
            prompts.append(try Prompt(object, source: source))
        }
        return prompts
    }

    /// What a failed read says, without Foundation's wrapping.
    private static func reason(_ error: Error) -> String {
        if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError,
            underlying.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(underlying.code))
        {
            return String(cString: strerror(code.rawValue))
        }
        return error.localizedDescription
    }
}
