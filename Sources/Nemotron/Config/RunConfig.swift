import Foundation
import Yams

/// A run config file (YAML). Every key is optional; command-line flags override keys; unknown
/// keys are rejected by name so typos fail loudly. Relative `model` paths are resolved against
/// the config file's directory.
///
/// ```yaml
/// model: ../models/tiny        # checkpoint directory (config.json + *.safetensors)
/// threads: 2                   # compute threads per process
/// max_new_tokens: 32
/// temperature: 0               # 0 = greedy
/// top_k: 0                     # 0 = off
/// top_p: 1.0                   # 1 = off
/// seed: 0
/// tokens: [1, 2, 3]            # prompt as token ids
/// prompts: ["Hello", {tokens: [1, 2]}]   # several prompts, generated together
/// stop: ["\n\n"]               # stop strings
/// compute_dtype: f32           # f32 (exact) or bf16 (faster prefill on AVX512-BF16 CPUs)
/// tensor_parallel_size: 2      # if given, must equal the number of MPI processes
/// fuse_allreduce_norm: auto    # auto | on | off (off by itself at tp 1 or with attention DP)
/// allreduce_strategy: auto     # mpi | oneshot | twoshot | ring | auto
/// enable_attention_dp: false   # attention data parallelism
/// prefill_chunk: 512           # prompt tokens per sequence in one prefill pass
/// ```
public struct RunConfig: Sendable, Equatable {
    public var model: String?
    public var threads: Int?
    public var maxNewTokens: Int?
    public var temperature: Double?
    public var topK: Int?
    public var topP: Double?
    public var seed: Int?
    public var tokens: [Int]?
    public var prompts: [Prompt]?
    public var stop: [String]?
    public var computeDType: ComputeDType?
    public var tensorParallelSize: Int?
    public var fuseAllReduceNorm: FuseAllReduceNorm?
    public var allReduceStrategy: AllReduceStrategy?
    public var enableAttentionDP: Bool?
    public var prefillChunk: Int?

    public static let keys = ["model", "threads", "max_new_tokens", "temperature", "top_k", "top_p", "seed", "tokens", "prompts", "stop",
                              "compute_dtype", "tensor_parallel_size", "fuse_allreduce_norm", "allreduce_strategy",
                              "enable_attention_dp", "prefill_chunk"]

    public init() {}

    public init(path: String) throws {
        let url = URL(fileURLWithPath: path).absoluteURL
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw NemotronError.fileMissing(path: path, what: "a YAML run config")
        }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch {
            throw NemotronError.fileUnreadable(path: path, reason: "invalid YAML: \(error)")
        }
        guard let values = parsed as? [String: Any] else {
            if parsed == nil { return }
            throw NemotronError.fileUnreadable(path: path, reason: "the top level must be a mapping of keys to values")
        }
        let unknown = values.keys.filter { !Self.keys.contains($0) }.sorted()
        if !unknown.isEmpty { throw NemotronError.unknownConfigKeys(path: path, keys: unknown, allowed: Self.keys) }
        let read = YAMLValues(values: values, path: path)
        if let path = try read.string("model") {
            model = path.hasPrefix("/") ? path : url.deletingLastPathComponent().appendingPathComponent(path).standardized.path
        }
        threads = try read.int("threads")
        maxNewTokens = try read.int("max_new_tokens")
        temperature = try read.double("temperature")
        topK = try read.int("top_k")
        topP = try read.double("top_p")
        seed = try read.int("seed")
        tokens = try read.intList("tokens")
        prompts = try read.list("prompts")?.enumerated().map { index, item in try Prompt(item, source: "\(path): prompts[\(index)]") }
        stop = try read.list("stop")?.map { item in
            guard let text = item as? String else { throw NemotronError.configValue(path: path, key: "stop", value: "\(item)", expected: "a list of strings") }
            return text
        }
        computeDType = try read.string("compute_dtype").map { try Self.choice($0, key: "compute_dtype", source: path) }
        tensorParallelSize = try read.int("tensor_parallel_size")
        fuseAllReduceNorm = try read.string("fuse_allreduce_norm").map { try Self.choice($0, key: "fuse_allreduce_norm", source: path) }
        allReduceStrategy = try read.string("allreduce_strategy").map { try Self.choice($0, key: "allreduce_strategy", source: path) }
        enableAttentionDP = try read.bool("enable_attention_dp")
        prefillChunk = try read.int("prefill_chunk")
        try validate(path: path)
    }

    /// This config with every non-nil field of `overrides` taking precedence.
    public func overridden(by overrides: RunConfig) -> RunConfig {
        var merged = self
        merged.model = overrides.model ?? model
        merged.threads = overrides.threads ?? threads
        merged.maxNewTokens = overrides.maxNewTokens ?? maxNewTokens
        merged.temperature = overrides.temperature ?? temperature
        merged.topK = overrides.topK ?? topK
        merged.topP = overrides.topP ?? topP
        merged.seed = overrides.seed ?? seed
        merged.tokens = overrides.tokens ?? tokens
        merged.prompts = overrides.prompts ?? prompts
        merged.stop = overrides.stop ?? stop
        merged.computeDType = overrides.computeDType ?? computeDType
        merged.tensorParallelSize = overrides.tensorParallelSize ?? tensorParallelSize
        merged.fuseAllReduceNorm = overrides.fuseAllReduceNorm ?? fuseAllReduceNorm
        merged.allReduceStrategy = overrides.allReduceStrategy ?? allReduceStrategy
        merged.enableAttentionDP = overrides.enableAttentionDP ?? enableAttentionDP
        merged.prefillChunk = overrides.prefillChunk ?? prefillChunk
        return merged
    }

    /// Range checks shared by the file and the command line (`path` names the source in errors).
    public func validate(path: String) throws {
        func check(_ ok: Bool, _ key: String, _ value: Any?, _ expected: String) throws {
            if !ok, let value { throw NemotronError.configValue(path: path, key: key, value: "\(value)", expected: expected) }
        }
        try check((threads ?? 1) >= 1, "threads", threads, "an integer >= 1")
        try check((maxNewTokens ?? 0) >= 0, "max_new_tokens", maxNewTokens, "an integer >= 0")
        try check((temperature ?? 0) >= 0, "temperature", temperature, "a number >= 0 (0 = greedy)")
        try check((topK ?? 0) >= 0, "top_k", topK, "an integer >= 0 (0 = off)")
        try check((topP ?? 1) > 0 && (topP ?? 1) <= 1, "top_p", topP, "a number in (0, 1] (1 = off)")
        try check((seed ?? 0) >= 0, "seed", seed, "an integer >= 0")
        try check((tensorParallelSize ?? 1) >= 1, "tensor_parallel_size", tensorParallelSize, "an integer >= 1")
        try check((prefillChunk ?? 1) >= 1, "prefill_chunk", prefillChunk, "an integer >= 1")
    }

    /// A value of a closed set, or an error listing the allowed values.
    public static func choice<T: RawRepresentable & CaseIterable>(_ text: String, key: String, source: String) throws -> T
    where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            throw NemotronError.configValue(path: source, key: key, value: text,
                                            expected: "one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    public var sampling: SamplingParameters {
        SamplingParameters(temperature: Float(temperature ?? 0), topK: topK ?? 0, topP: Float(topP ?? 1), seed: UInt64(seed ?? 0))
    }
}

/// One prompt: text (tokenized with the checkpoint's tokenizer) or token ids.
public enum Prompt: Sendable, Equatable {
    case text(String)
    case tokens([Int])

    /// From a config or JSON-lines entry: a string, or an object with `prompt` or `tokens`.
    public init(_ value: Any, source: String) throws {
        if let text = value as? String {
            self = .text(text)
        } else if let object = value as? [String: Any], let text = object["prompt"] as? String {
            self = .text(text)
        } else if let object = value as? [String: Any], let ids = object["tokens"] as? [Any],
            let ints = ids.map({ ($0 as? NSNumber)?.intValue ?? ($0 as? Int) }) as? [Int]
        {
            self = .tokens(ints)
        } else {
            throw NemotronError.invalidArgument(name: source, value: "\(value)",
                                                expected: "a string, or an object with a \"prompt\" string or a \"tokens\" list of integers")
        }
    }

    /// A prompt file: one prompt per line, either plain text or a JSON object with `prompt` or `tokens`.
    public static func file(_ path: String) throws -> [Prompt] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw NemotronError.fileMissing(path: path, what: "a prompt file (one prompt per line, or JSON lines)")
        }
        return try text.split(separator: "\n", omittingEmptySubsequences: true).enumerated().map { number, line in
            if line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) {
                return try Prompt(object, source: "\(path) line \(number + 1)")
            }
            return .text(String(line))
        }
    }
}

/// Typed reads from a parsed YAML mapping with errors naming the file and key.
private struct YAMLValues {
    let values: [String: Any]
    let path: String

    func string(_ key: String) throws -> String? {
        guard let value = values[key] else { return nil }
        guard let text = value as? String else { throw mismatch(key, value, "a string") }
        return text
    }

    func int(_ key: String) throws -> Int? {
        guard let value = values[key] else { return nil }
        guard let number = value as? Int else { throw mismatch(key, value, "an integer") }
        return number
    }

    func double(_ key: String) throws -> Double? {
        guard let value = values[key] else { return nil }
        if let number = value as? Double { return number }
        if let number = value as? Int { return Double(number) }
        throw mismatch(key, value, "a number")
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = values[key] else { return nil }
        guard let flag = value as? Bool else { throw mismatch(key, value, "true or false") }
        return flag
    }

    func list(_ key: String) throws -> [Any]? {
        guard let value = values[key] else { return nil }
        guard let list = value as? [Any] else { throw mismatch(key, value, "a list") }
        return list
    }

    func intList(_ key: String) throws -> [Int]? {
        guard let value = values[key] else { return nil }
        guard let list = value as? [Any], let ints = list as? [Int] else { throw mismatch(key, value, "a list of integers") }
        return ints
    }

    private func mismatch(_ key: String, _ value: Any, _ expected: String) -> NemotronError {
        .configValue(path: path, key: key, value: "\(value)", expected: expected)
    }
}
