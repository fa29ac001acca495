import Foundation
import Testing

@testable import Nemotron

/// Issue 15's classes of bad input, in process: each is refused where it enters with an error
/// naming the file, key or tensor and the allowed values (the command-line side, exit codes
/// and leftovers are in `BadInputCommandTests`).
@Suite("Reliability: bad inputs are refused where they enter")
struct InputValidationTests {
    // MARK: - safetensors headers, as the safetensors library checks them

    static let f32 = #""dtype": "F32""#

    @Test(
        "a malformed safetensors header names the file, the tensor and the rule",
        arguments: [
            // Element count or byte size past 64 bits (trapped while parsing before).
            (#"{"a": {\#(f32), "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}"#, 16, "overflows 64 bits"),
            (#"{"a": {\#(f32), "shape": [4611686018427387904], "data_offsets": [0, 16]}}"#, 16, "overflows 64 bits"),
            // Overlapping byte ranges, duplicate names and fractional shapes (accepted before).
            (
                #"{"a": {\#(f32), "shape": [4], "data_offsets": [0, 16]}, "b": {\#(f32), "shape": [4], "#
                    + #""data_offsets": [8, 24]}}"#, 24, "overlaps the tensor before it, which ends at 16"
            ),
            (
                #"{"a": {\#(f32), "shape": [2], "data_offsets": [0, 8]}, "a": {\#(f32), "shape": [2], "#
                    + #""data_offsets": [8, 16]}}"#, 16, #"the key "a" appears twice"#
            ),
            (
                #"{"a": {\#(f32), "shape": [2.5, 2], "data_offsets": [0, 16]}}"#, 16,
                "has shape [2.5, 2]; expected a list of non-negative integers"
            ),
            (#"{"a": {\#(f32), "shape": [4.0], "data_offsets": [0, 16]}}"#, 16, "expected a list of non-negative"),
            (#"{"a": {\#(f32), "shape": [-4], "data_offsets": [0, 16]}}"#, 16, "expected a list of non-negative"),
            (#"{"a": {\#(f32), "shape": [true], "data_offsets": [0, 4]}}"#, 4, "expected a list of non-negative"),
            (#"{"a": {\#(f32), "shape": [4], "data_offsets": [0, 16.0]}}"#, 16, "expected [begin, end], integers"),
            (#"{"a": {\#(f32), "shape": [0], "data_offsets": [8, 0]}}"#, 8, "expected [begin, end], integers"),
            // Offsets that leave bytes to no tensor, or do not reach the end of the data.
            (
                #"{"a": {\#(f32), "shape": [2], "data_offsets": [0, 8]}, "b": {\#(f32), "shape": [2], "#
                    + #""data_offsets": [16, 24]}}"#, 24, "gap: bytes [8, 16) before tensor 'b' belong to no tensor"
            ),
            (
                #"{"a": {\#(f32), "shape": [2], "data_offsets": [0, 8]}}"#, 16,
                "the tensors cover 8 bytes but the data section holds 16"
            ),
            (#"{"a": {\#(f32), "shape": [4], "data_offsets": [0, 16]}}"#, 8, "lies outside the data section (8 bytes)"),
            (#"{"a": {\#(f32), "shape": [3], "data_offsets": [0, 16]}}"#, 16, "spans 16 bytes but shape [3] of F32"),
            (#"{"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}"#, 2, "12 bits: not a whole number"),
            (
                #"{"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}"#, 16,
                "has dtype \"F128\"; expected one of BF16, BOOL, C64, F16, F32"
            ),
            (#"{"a": {"dtype": "F32", "shape": [1]}}"#, 4, "lacks dtype, shape or data_offsets"),
            (#"{"__metadata__": {"format": 1}}"#, 0, "'__metadata__' is not an object of strings"),
            (#"[]"#, 0, "header does not start with '{'"),
            (#"{"a": "#, 0, "invalid JSON at line 1"),
        ])
    func safetensorsHeader(header: String, dataBytes: Int, message: String) throws {
        let error = try DamagedFiles.headerError(header, dataBytes: dataBytes)
        #expect(error.contains("not a valid safetensors file") && error.contains(message), "\(error)")
    }

    @Test("valid headers: offsets in any key order, empty tensors, no tensors, metadata of strings")
    func safetensorsValid() throws {
        for (header, bytes) in [
            (
                #"{"b": {\#(Self.f32), "shape": [2], "data_offsets": [8, 16]}, "__metadata__": {"format": "pt"}, "#
                    + #""a": {\#(Self.f32), "shape": [1, 2], "data_offsets": [0, 8]}}"#, 16
            ),
            (#"{"e": {\#(Self.f32), "shape": [0, 5], "data_offsets": [0, 0]}}"#, 0), ("{}", 0),
            (#"{"q": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}"#, 2),
        ] {
            #expect(try DamagedFiles.headerError(header, dataBytes: bytes) == "no error", "\(header)")
        }
    }

    @Test("a header length above safetensors' 100,000,000-byte limit")
    func safetensorsHeaderLimit() throws {
        let directory = try TemporaryDirectory()
        let url = directory.file("big.safetensors")
        var data = Data()
        withUnsafeBytes(of: UInt64(100_000_001).littleEndian) { data.append(contentsOf: $0) }
        try data.write(to: url)
        // A sparse file: long enough for the declared header without writing it.
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 100_000_016)
        try handle.close()
        let message = "\(try #require(throws: NemotronError.self) { try SafetensorsFile(path: url.path) })"
        #expect(message.contains("header length 100000001 exceeds the limit of 100000000 bytes"), "\(message)")
    }

    // MARK: - tokenizer.json, as strictly as tokenizers loads it

    static func tokenizerJSON(vocab: [String: Any]? = nil, merges: [Any]? = nil, added: [Any] = []) -> [String: Any] {
        [
            "model": [
                "type": "BPE", "vocab": vocab ?? ["a": 0, "b": 1, "ab": 2], "merges": merges ?? ["a b"],
            ] as [String: Any],
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
            "decoder": ["type": "ByteLevel"], "added_tokens": added,
        ]
    }

    static func tokenizerError(_ json: [String: Any]) -> String {
        do {
            _ = try Tokenizer(json: JSONObject(values: json, path: "tokenizer.json"), config: nil)
            return "no error"
        } catch { return "\(error)" }
    }

    @Test(
        "bad vocabulary ids, merges and added tokens name the key and the allowed values",
        arguments: [
            // Negative, beyond 32 bits, and so large a table would take gigabytes (trapped or ran before).
            JSONCase(tokenizerJSON(vocab: ["a": -1, "b": 1, "ab": 2]), #"model.vocab["a"]' has value -1"#),
            JSONCase(
                tokenizerJSON(vocab: ["a": 0, "b": 4_294_967_296, "ab": 2]),
                #"model.vocab["b"]' has value 4294967296"#),
            JSONCase(tokenizerJSON(vocab: ["a": 0, "b": 1, "ab": 1_000_000_000]), "has value 1000000000"),
            JSONCase(tokenizerJSON(vocab: ["a": 0, "b": 1.5, "ab": 2]), "has value 1.5"),
            JSONCase(tokenizerJSON(vocab: ["a": 0, "b": true, "ab": 2]), "has value true"),
            // Merges naming tokens outside the vocabulary (dropped before; tokenizers refuses the file).
            JSONCase(
                tokenizerJSON(merges: ["a c"]), #"'model.merges[0]' has value "a c"; expected tokens of model.vocab"#),
            JSONCase(tokenizerJSON(vocab: ["a": 0, "b": 1], merges: ["a b"]), #"("ab" is not)"#),
            JSONCase(tokenizerJSON(merges: ["ab"]), #"expected "a b" (two tokens and one space)"#),
            JSONCase(tokenizerJSON(merges: [["a", "b", "c"]]), "model.merges[0]"),
            JSONCase(tokenizerJSON(added: [["id": -5, "content": "<x>"]]), "'added_tokens[0].id' has value -5"),
            JSONCase(tokenizerJSON(added: [["id": 5]]), #"'added_tokens[0]'"#),
        ])
    func tokenizer(_ test: JSONCase) {
        let (json, message) = (test.json, test.message)
        let error = Self.tokenizerError(json)
        #expect(error.hasPrefix("tokenizer.json: key '") && error.contains(message), "\(error)")
        if message.hasPrefix("model.vocab[") || message.contains(".id'") {
            #expect(error.contains("expected an integer id in 0...16777215"), "\(error)")
        }
    }

    @Test("a valid minimal tokenizer loads and merges")
    func tokenizerValid() throws {
        #expect(Self.tokenizerError(Self.tokenizerJSON()) == "no error")
        let tokenizer = try Tokenizer(json: JSONObject(values: Self.tokenizerJSON(), path: "t"), config: nil)
        #expect(tokenizer.encode("ab") == [2])
    }

    // MARK: - config.json value ranges

    static var config: [String: Any] { ModelConfigTests.base }

    static func configError(_ changes: [String: Any]) -> String {
        var values = config
        for (key, value) in changes { values[key] = value }
        do {
            _ = try ModelConfig(json: JSONObject(values: values, path: "config.json"))
            return "no error"
        } catch { return "\(error)" }
    }

    @Test(
        "config values out of range name the key as the file spells it",
        arguments: [
            // head_dim 0 blamed num_attention_heads before.
            JSONCase(["head_dim": 0], "key 'head_dim' has value 0; expected a positive integer up to 16777216"),
            JSONCase(["attention_head_dim": 0], "key 'attention_head_dim' has value 0"),
            // A negative, zero or (in float32) vanishing epsilon ran and gave all-zero ids before.
            JSONCase(
                ["layer_norm_epsilon": -1e-5], "key 'layer_norm_epsilon' has value -1e-05; expected a finite positive"),
            JSONCase(["rms_norm_eps": 0.0], "key 'rms_norm_eps' has value 0.0; expected a finite positive"),
            JSONCase(["norm_eps": 1e-300], "key 'norm_eps' has value 1e-300; expected a finite positive number"),
            JSONCase(["layer_norm_epsilon": NSNumber(value: Double.nan)], "key 'layer_norm_epsilon' has value NaN"),
            JSONCase(["layer_norm_epsilon": 1e39], "key 'layer_norm_epsilon' has value 1e+39"),
            // Sizes whose products would overflow, or that are not positive.
            JSONCase(["mamba_num_heads": 1 << 62], "key 'mamba_num_heads' has value 4611686018427387904"),
            JSONCase(["hidden_size": -64], "key 'hidden_size' has value -64; expected a positive integer"),
            JSONCase(["vocab_size": 0], "key 'vocab_size' has value 0"),
            JSONCase(["conv_kernel": 0], "key 'conv_kernel' has value 0; expected an integer in 1...1024"),
            JSONCase(["chunk_size": 0], "key 'chunk_size' has value 0"),
            JSONCase(["ssm_state_size": 0], "key 'ssm_state_size' has value 0"),
            JSONCase(["intermediate_size": -1], "key 'intermediate_size' has value -1"),
            JSONCase(
                ["moe_shared_expert_intermediate_size": 1 << 40, "n_shared_experts": 1 << 40],
                "key 'moe_shared_expert_intermediate_size' has value 1099511627776; expected an integer in 0...16777216"
            ),
            JSONCase(["moe_latent_size": 0], "key 'moe_latent_size' has value 0"),
            JSONCase(["num_nextn_predict_layers": -1], "key 'num_nextn_predict_layers' has value -1"),
            // A pattern of a different length than num_hidden_layers.
            JSONCase(
                ["num_hidden_layers": 3], "key 'num_hidden_layers' has value 3; expected 4, the length of the layer"),
        ])
    func configRanges(_ test: JSONCase) {
        let (changes, message) = (test.json, test.message)
        let error = Self.configError(changes)
        #expect(error.hasPrefix("config.json: ") && error.contains(message), "\(error)")
    }

    // MARK: - checkpoints that disagree with their config, non-finite weights

    @Test("a layer pattern shorter than the checkpoint's layers is refused, naming the deepest layer")
    func shortPattern() throws {
        let directory = try TemporaryDirectory()
        let source = Fixture.all[0].directory
        let config = try DamagedFiles.json(source.appendingPathComponent("config.json")) {
            $0["layers_block_type"] = Array(($0["layers_block_type"] as! [Any]).prefix(6))
        }
        let checkpoint = try DamagedFiles.checkpoint(
            linking: source, in: directory.url, replacing: ["config.json": config])
        let message = "\(try #require(throws: NemotronError.self) { try NemotronH(directory: checkpoint) })"
        #expect(message.contains("has value \"M-M*M-\" (6 layers)"), "\(message)")
        #expect(message.contains("the weights have layers up to 7 (e.g. 'backbone.layers.7."), "\(message)")
    }

    @Test(
        "NaN or infinite norm weights, A_log, D or dt_bias are refused at load, naming the tensor and element",
        arguments: [
            ("backbone.norm_f.weight", 3, Float.nan), ("backbone.layers.2.norm.weight", 0, Float.infinity),
            ("backbone.layers.0.mixer.A_log", 5, Float.nan), ("backbone.layers.4.mixer.dt_bias", 1, -Float.infinity),
            ("backbone.layers.0.mixer.norm.weight", 7, Float.nan),
        ])
    func nonFiniteWeights(tensor: String, index: Int, value: Float) throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(Fixture.all[0])
        let file = copy.appendingPathComponent("model.safetensors")
        try DamagedFiles.setFloat(value, at: index, of: tensor, in: file)
        let message = "\(try #require(throws: NemotronError.self) { try NemotronH(directory: copy) })"
        #expect(
            message == "\(file.path): tensor '\(tensor)' holds \(value) at element \(index); weights must be "
                + "finite numbers (a corrupt or badly converted checkpoint?)")
    }

    @Test("NaN in a weight matrix ends generation with an error instead of all-zero ids")
    func nanLogits() throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(Fixture.all[0])
        try DamagedFiles.setFloat(
            .nan, at: 0, of: "backbone.layers.0.mixer.in_proj.weight",
            in: copy.appendingPathComponent("model.safetensors"))
        var settings = RunConfig()
        settings.model = copy.path
        settings.threads = 1
        let engine = try Engine(settings: settings, world: SingleProcess())
        var events: [GenerationEvent] = []
        let error = try #require(throws: NemotronError.self) {
            try engine.generate([Request(prompt: [1, 2, 3], maxNewTokens: 5)]) { events.append($0) }
        }
        #expect(error == .nonFiniteLogits(prompt: 0, token: 0))
        #expect("\(error)".contains("are not finite (NaN or infinity)"))
        // The failing step releases no text.
        #expect(events.allSatisfy { if case .token(_, _, let text) = $0 { text.isEmpty } else { true } })
    }

    // MARK: - token budgets, prompt lengths, threads

    @Test(
        "a token budget of Int.max or 10⁹ runs step by step without reserving or overflowing",
        arguments: [Int.max, 1_000_000_000])
    func hugeBudget(budget: Int) throws {
        let model = try Fixture.all[0].load()
        let scheduler = Scheduler(model: model, workspace: Workspace(threads: 1), tokenizer: nil, stopIds: [])
        try scheduler.submit(Request(prompt: [5, 9, 200], maxNewTokens: budget))
        var tokens = 0
        for _ in 0..<6 {
            for event in scheduler.step() ?? [] { if case .token = event { tokens += 1 } }
        }
        // The pass that reads the prompt decides a token, then one per decode pass.
        #expect(tokens == 6)
        #expect(scheduler.prefillProgress == (3, 3))
    }

    @Test("the longest prompt is what memory allows for the KV cache and prefill scores, named in the error")
    func contextLimit() throws {
        let model = try Fixture.all[0].load()
        let limit = ContextLimit(model: model, prefillChunk: 512, memoryBytes: 1 << 20)
        // Two attention layers of 2 KV heads × 16 on one rank, prefill chunk 512, 8 heads.
        #expect(limit.bytesPerToken == 2 * 2 * (2 * 2 * 16 * 4) + 512 * 4 + 2 * 8 * 4)
        #expect(limit.maxTokens == (1 << 20) / limit.bytesPerToken)
        try limit.check(promptTokens: limit.maxTokens)
        let error = try #require(throws: NemotronError.self) { try limit.check(promptTokens: limit.maxTokens + 1) }
        #expect(
            "\(error)".contains(
                "the prompt has \(limit.maxTokens + 1) tokens, more than the \(limit.maxTokens) whose context fits in "
                    + "the memory available to this process (0.0 GiB"))
        #expect(ContextLimit.availableMemory() > 0)
    }

    @Test("threads are bounded by 8 per CPU, and the error names the key and the limit")
    func threadLimit() throws {
        var config = RunConfig()
        let limit = ThreadPool.maxThreads
        try config.apply(flags: ["--threads", "\(limit)"])
        let error = try #require(throws: NemotronError.self) { try config.apply(flags: ["--threads", "100000"]) }
        #expect(
            "\(error)"
                == "command line: key 'threads' has value 100000; expected an integer >= 1 (or 0: automatic) and at "
                + "most \(limit) (8 per CPU; this machine has \(limit / 8))")
    }

    @Test("a thread that cannot be created is reported, and the pool still runs every job")
    func threadStartFailure() {
        // A stack no machine can map makes pthread_create fail like an exhausted thread limit.
        let pool = ThreadPool(threads: 4, pin: false, stackSize: 1 << 60)
        let message = "\(pool.startFailure.map { "\($0)" } ?? "none")"
        #expect(message.hasPrefix("cannot start 4 compute threads: creating thread 2 failed ("), "\(message)")
        #expect(
            message.hasSuffix(
                "lower 'threads' (--threads) or raise the system's limit on threads (ulimit -u, cgroup pids.max)"))
        #expect(pool.threads == 1)
        nonisolated(unsafe) var ran = 0
        pool.forParts(4) { _ in ran += 1 }
        #expect(ran == 1)
    }

    // MARK: - prompt files and token ids

    static func promptFile(_ bytes: [UInt8]) throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let url = directory.file("prompts.txt")
        try Data(bytes).write(to: url)
        return (directory, url.path)
    }

    @Test("Windows line endings separate prompts and are not part of them")
    func crlfPrompts() throws {
        let (directory, path) = try Self.promptFile(Array("one\r\ntwo \r\n\r\n{\"tokens\": [1, 2]}\r\n".utf8))
        #expect(try Prompt.file(path) == [.text("one"), .text("two "), .tokens([1, 2])])
        _ = directory
    }

    @Test(
        "bad prompt-file lines are errors naming the file and line",
        arguments: [
            (Array("ok\n{not json\n".utf8), "line 2 starts with '{' but is not a JSON object: invalid JSON at line 1"),
            (Array("{\"tokens\": [1.9]}\n".utf8), "line 1 = [\"tokens\": [1.9]] is invalid"),
            (Array("{\"tokens\": [true]}\n".utf8), "expected a string, or an object with a \"prompt\" string or a"),
            (Array("{\"tokens\": [1, 2.0]}\n".utf8), "\"tokens\" list of integers"),
            ([0x6F, 0x6B, 0x0A, 0x61, 0xFF, 0x0A], "line 2 is not UTF-8 text (invalid byte after 1 valid characters)"),
        ])
    func badPromptLines(bytes: [UInt8], message: String) throws {
        let (directory, path) = try Self.promptFile(bytes)
        let error = "\(try #require(throws: NemotronError.self) { try Prompt.file(path) })"
        #expect(error.contains(path) && error.contains(message), "\(error)")
        _ = directory
    }

    @Test("a missing prompt file is 'not found', an unreadable one says why")
    func unreadablePromptFile() throws {
        let directory = try TemporaryDirectory()
        let missing = "\(try #require(throws: NemotronError.self) { try Prompt.file(directory.file("none").path) })"
        #expect(missing.contains("none: not found (expected a prompt file"))
        let folder = "\(try #require(throws: NemotronError.self) { try Prompt.file(directory.url.path) })"
        #expect(folder.contains(": cannot read: "), "\(folder)")
    }

    @Test("token ids in a YAML config must be integers: 1.9 and true are not read as 1")
    func yamlTokenIds() throws {
        let directory = try TemporaryDirectory()
        for text in [
            "tokens: [1.9]\n", "tokens: [true]\n", "prompts: [{tokens: [1.9]}]\n", "prompts: [{tokens: [1, true]}]\n",
        ] {
            let url = directory.file("run.yaml")
            try text.write(to: url, atomically: false, encoding: .utf8)
            let error = "\(try #require(throws: NemotronError.self) { try RunConfig(path: url.path) })"
            #expect(error.contains("integers"), "\(text): \(error)")
        }
        try "tokens: [1, 2]\nprompts: [{tokens: [3]}]\n".write(
            to: directory.file("ok.yaml"), atomically: false, encoding: .utf8)
        #expect(try RunConfig(path: directory.file("ok.yaml").path).allPrompts == [.tokens([3]), .tokens([1, 2])])
    }
}

/// A JSON object and the message it must give (a test argument: `Any` is not `Sendable`).
struct JSONCase: @unchecked Sendable, CustomStringConvertible {
    let json: [String: Any]
    let message: String
    init(_ json: [String: Any], _ message: String) {
        self.json = json
        self.message = message
    }
    var description: String { message }
}
