import Foundation

/// A Nemotron-H `config.json` (model_type `nemotron_h`), decoded with every alias real
/// checkpoints use, plus the derived sizes named in docs/architecture.md.
///
/// Glossary (one name per quantity, used everywhere): hiddenSize `H`, vocabSize `V`,
/// numHeads `hq`, numKVHeads `hkv`, headDim `dh`, mambaHeads `nh`, mambaHeadDim `P`,
/// ssmStateSize `N`, mambaGroups `G` (HF `n_groups`), convKernel `K`, ffnSize `I`,
/// numExperts `E`, expertsPerToken `k`, moeFFNSize `Im`, sharedExpertFFNSize `Is`,
/// moeLatentSize `Hl`, routerGroups (HF `n_group`), routerTopKGroups (HF `topk_group`).
public struct ModelConfig: Sendable {
    public var hiddenSize: Int
    public var vocabSize: Int
    public var layerKinds: [LayerKind]
    public var normEps: Float

    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int

    public var mambaHeads: Int
    public var mambaHeadDim: Int
    public var ssmStateSize: Int
    public var mambaGroups: Int
    public var convKernel: Int
    public var chunkSize: Int
    public var useConvBias: Bool
    /// dt is clamped to this range after softplus (`time_step_limit`, default (0, inf): no clamp).
    public var timeStepLimit: ClosedRange<Float>

    public var ffnSize: Int

    public var numExperts: Int
    public var expertsPerToken: Int
    public var moeFFNSize: Int
    public var sharedExpertFFNSize: Int
    public var moeLatentSize: Int?
    public var routerGroups: Int
    public var routerTopKGroups: Int
    public var routedScalingFactor: Float
    public var normTopKProb: Bool

    public var tieWordEmbeddings: Bool
    /// `eos_token_id` of config.json (both levels of a wrapper) and generation_config.json, each an
    /// integer or a list, merged in that order without repeats. (The stop ids add the tokenizer's
    /// `eos_token`: `Engine.stopTokenIds`.)
    public var eosTokenIds: [Int]

    /// config.json's top-level `model_type`: `nemotron_h`, or a wrapper such as
    /// `NemotronH_Nano_VL_V2` whose language model this is.
    public var modelType: String
    /// Prefix of the language model's tensor names in the checkpoint: "", or `language_model.`
    /// in the VL wrapper (whose vision and projector tensors are not read).
    public var weightPrefix: String
    /// Multi-token-prediction layers (`num_nextn_predict_layers`); their `mtp.*` tensors are not
    /// used for decoding and not counted.
    public var mtpLayers: Int
    /// `dtype` (transformers 5) or `torch_dtype`, as declared; the tensors' own dtypes decide.
    public var declaredDType: String?
    /// How the weights are quantized (`quantization_config`, or `hf_quant_config.json`); nil for
    /// a float checkpoint.
    public var quantization: QuantizationConfig?

    // MARK: - Derived sizes (docs/architecture.md, "Sizes")

    /// Mamba inner width `Di = nh·P`.
    public var mambaInner: Int { mambaHeads * mambaHeadDim }
    /// Conv channels `Dc = Di + 2·G·N`, ordered [x | B | C].
    public var convChannels: Int { mambaInner + 2 * mambaGroups * ssmStateSize }
    /// in_proj outputs `Dp = 2·Di + 2·G·N + nh`, ordered [z | x | B | C | dt].
    public var inProjSize: Int { 2 * mambaInner + 2 * mambaGroups * ssmStateSize + mambaHeads }
    /// Width routed experts run at: `Hl` for LatentMoE, else `H`.
    public var expertInputSize: Int { moeLatentSize ?? hiddenSize }
    public var numLayers: Int { layerKinds.count }
    public var pattern: String { String(layerKinds.map(\.rawValue)) }

    public func count(of kind: LayerKind) -> Int { layerKinds.filter { $0 == kind }.count }
    public func has(_ kind: LayerKind) -> Bool { layerKinds.contains(kind) }
}

extension ModelConfig {
    /// Wrapper model types whose language model nemotron-run runs: a `nemotron_h` config under
    /// `llm_config`, and the prefix of its tensor names.
    static let wrappers = ["NemotronH_Nano_VL_V2": "language_model."]

    /// Reads `config.json` (and `generation_config.json` for EOS ids) from a checkpoint directory.
    /// A quantized checkpoint's `quantization_config` is read from config.json, or else from an
    /// `hf_quant_config.json` beside it (the older ModelOpt export).
    public init(directory: URL) throws {
        let json = try JSONObject(contentsOf: directory.appendingPathComponent("config.json"))
        try self.init(json: json)
        let legacy = directory.appendingPathComponent("hf_quant_config.json")
        if quantization == nil && FileManager.default.fileExists(atPath: legacy.path) {
            let file = try JSONObject(contentsOf: legacy)
            quantization = try QuantizationConfig(json: file.values, path: legacy.path, key: "quantization")
        }
        let generation = directory.appendingPathComponent("generation_config.json")
        if FileManager.default.fileExists(atPath: generation.path),
            let ids = try JSONObject(contentsOf: generation).intList("eos_token_id")
        {
            eosTokenIds = Self.merged(eosTokenIds, ids)
        }
    }

    /// A `nemotron_h` config, or a wrapper (`wrappers`) holding one under `llm_config`.
    init(json c: JSONObject) throws {
        let modelType = try c.string("model_type")
        let architectures = c.values["architectures"] as? [String] ?? []
        guard let wrapper = ([modelType] + architectures).first(where: { Self.wrappers[$0] != nil }) else {
            try self.init(languageModel: c)
            return
        }
        guard let inner = c.values["llm_config"] as? [String: Any] else {
            throw NemotronError.configKeyMissing(path: c.path, key: "llm_config")
        }
        try self.init(languageModel: JSONObject(values: inner, path: "\(c.path) (llm_config of \(wrapper))"))
        self.modelType = modelType
        weightPrefix = Self.wrappers[wrapper]!
        eosTokenIds = Self.merged(try c.intList("eos_token_id") ?? [], eosTokenIds)
        if declaredDType == nil { declaredDType = try Self.dtype(c) }
        if let outer = try Self.quantization(c) { quantization = outer }
    }

    /// The language model's own config (`model_type` `nemotron_h`).
    private init(languageModel c: JSONObject) throws {
        let modelType = try c.string("model_type")
        if modelType == "nemotron_h_puzzle" || c.raw(["block_configs"]) != nil {
            let isPuzzle = modelType == "nemotron_h_puzzle"
            throw NemotronError.configValue(
                path: c.path, key: isPuzzle ? "model_type" : "block_configs",
                value: isPuzzle ? "\"nemotron_h_puzzle\"" : "(a list of per-layer settings)",
                expected:
                    "\"nemotron_h\" with one set of sizes for every layer (per-layer block_configs of "
                    + "nemotron_h_puzzle derivatives are not supported)")
        }
        guard modelType == "nemotron_h" else {
            throw NemotronError.configValue(
                path: c.path, key: "model_type", value: "\"\(modelType)\"", expected: "\"nemotron_h\"")
        }
        quantization = try Self.quantization(c)
        self.modelType = modelType
        weightPrefix = ""
        mtpLayers = try c.optionalInt("num_nextn_predict_layers") ?? 0
        declaredDType = try Self.dtype(c)
        layerKinds = try Self.layerKinds(c)
        if let declared = try c.optionalInt("num_hidden_layers"), declared != layerKinds.count {
            throw NemotronError.configValue(
                path: c.path, key: "num_hidden_layers", value: "\(declared)",
                expected: "\(layerKinds.count), the length of the layer pattern")
        }
        hiddenSize = try c.int("hidden_size")
        vocabSize = try c.int("vocab_size")
        normEps = Float(try c.double("rms_norm_eps", "layer_norm_epsilon", "norm_eps", default: 1e-5))
        tieWordEmbeddings = try c.bool("tie_word_embeddings", default: false)
        eosTokenIds = try c.intList("eos_token_id") ?? []

        let kinds = Set(layerKinds)
        numHeads =
            kinds.contains(.attention) ? try c.int("num_attention_heads") : try c.int("num_attention_heads", default: 1)
        numKVHeads = try c.int("num_key_value_heads", default: numHeads)
        headDim = try c.int("head_dim", "attention_head_dim", default: hiddenSize / max(numHeads, 1))

        let needsMamba = kinds.contains(.mamba)
        mambaHeads = try c.int("mamba_num_heads", default: needsMamba ? nil : 0)
        mambaHeadDim = try c.int("mamba_head_dim", default: needsMamba ? nil : 0)
        ssmStateSize = try c.int("ssm_state_size", default: needsMamba ? nil : 0)
        mambaGroups = try c.int("n_groups", "mamba_n_groups", default: needsMamba ? nil : 1)
        convKernel = try c.int("conv_kernel", "mamba_d_conv", default: 4)
        chunkSize = try c.int("chunk_size", "mamba_chunk_size", default: 128)
        useConvBias = try c.bool("use_conv_bias", "mamba_conv_bias", default: true)
        timeStepLimit = try Self.timeStepLimit(c)

        ffnSize = try c.int("intermediate_size", default: kinds.contains(.mlp) ? nil : 0)

        let needsMoE = kinds.contains(.moe)
        numExperts = try c.int("n_routed_experts", "num_local_experts", default: needsMoE ? nil : 0)
        expertsPerToken = try c.int("num_experts_per_tok", default: needsMoE ? nil : 0)
        moeFFNSize = try c.int("moe_intermediate_size", default: needsMoE ? nil : 0)
        sharedExpertFFNSize = try Self.product(
            c, "moe_shared_expert_intermediate_size",
            try c.int("moe_shared_expert_intermediate_size", default: needsMoE ? nil : 0),
            "n_shared_experts", try c.int("n_shared_experts", default: 1))
        moeLatentSize = try c.optionalInt("moe_latent_size")
        routerGroups = try c.int("n_group", default: 1)
        routerTopKGroups = try c.int("topk_group", default: 1)
        routedScalingFactor = Float(try c.double("routed_scaling_factor", default: 1))
        normTopKProb = try c.bool("norm_topk_prob", default: true)

        for key in ["attention_bias", "mlp_bias", "use_bias"] where try c.bool(key, default: false) {
            throw NemotronError.configValue(
                path: c.path, key: key, value: "true",
                expected: "false (no known Nemotron-H checkpoint has these biases; nemotron-run does not support them)")
        }
        try validate(c)
    }

    /// The pattern as `hybrid_override_pattern` (string, or list of one-character strings) or as
    /// a `layers_block_type` list (transformers 5 or legacy names). A config with both must give
    /// the same layers in each. (MTP layers, `mtp_hybrid_override_pattern` and
    /// `mtp_layers_block_type`, are not part of it.)
    private static func layerKinds(_ c: JSONObject) throws -> [LayerKind] {
        let pattern = try patternKinds(c)
        let list = try blockTypeKinds(c)
        if let pattern, let list, pattern != list {
            throw NemotronError.configValue(
                path: c.path, key: "layers_block_type", value: "\"\(String(list.map(\.rawValue)))\" as a pattern",
                expected: "the layers of hybrid_override_pattern (\"\(String(pattern.map(\.rawValue)))\")")
        }
        guard let kinds = pattern ?? list else {
            throw NemotronError.configKeyMissing(path: c.path, key: "hybrid_override_pattern' or 'layers_block_type")
        }
        return kinds
    }

    private static func patternKinds(_ c: JSONObject) throws -> [LayerKind]? {
        if let (key, value) = c.raw(["hybrid_override_pattern"]) {
            let characters: [Character]
            if let text = value as? String {
                characters = Array(text)
            } else if let list = value as? [String], list.allSatisfy({ $0.count == 1 }) {
                characters = list.map { Character($0) }
            } else {
                throw NemotronError.configValue(
                    path: c.path, key: key, value: "\(value)", expected: "a string of \(LayerKind.patternCharacters)")
            }
            return try characters.enumerated().map { index, character in
                guard let kind = LayerKind(rawValue: character) else {
                    throw NemotronError.configValue(
                        path: c.path, key: key, value: "'\(character)' at position \(index)",
                        expected:
                            "one of the pattern characters "
                            + "\(LayerKind.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))"
                    )
                }
                return kind
            }
        }
        return nil
    }

    private static func blockTypeKinds(_ c: JSONObject) throws -> [LayerKind]? {
        guard let (key, value) = c.raw(["layers_block_type", "layer_types"]) else { return nil }
        guard let list = value as? [String] else {
            throw NemotronError.configValue(
                path: c.path, key: key, value: "\(value)", expected: "a list of layer type names")
        }
        return try list.enumerated().map { index, name in
            guard let kind = LayerKind(blockType: name) else {
                throw NemotronError.configValue(
                    path: c.path, key: key, value: "\"\(name)\" at position \(index)",
                    expected: "one of \(LayerKind.blockTypes.joined(separator: ", "))")
            }
            return kind
        }
    }

    /// `quantization_config`, if any.
    private static func quantization(_ c: JSONObject) throws -> QuantizationConfig? {
        guard let (key, value) = c.raw(["quantization_config"]) else { return nil }
        guard let fields = value as? [String: Any] else {
            throw NemotronError.configValue(
                path: c.path, key: key, value: JSONObject.describe(value), expected: "an object")
        }
        return try QuantizationConfig(json: fields, path: c.path, key: key)
    }

    /// `dtype` (transformers 5) or `torch_dtype`.
    private static func dtype(_ c: JSONObject) throws -> String? {
        c.raw(["dtype", "torch_dtype"]) == nil ? nil : try c.string("dtype", "torch_dtype")
    }

    /// `first` then the ids of `second` it lacks.
    private static func merged(_ first: [Int], _ second: [Int]) -> [Int] {
        var seen = Set<Int>()
        return (first + second).filter { seen.insert($0).inserted }
    }

    private static func timeStepLimit(_ c: JSONObject) throws -> ClosedRange<Float> {
        guard let (key, value) = c.raw(["time_step_limit", "mamba_dt_limit"]) else { return 0...Float.infinity }
        guard let pair = value as? [Any], pair.count == 2, let lo = JSONObject.number(pair[0]),
            let hi = JSONObject.number(pair[1]), lo <= hi
        else {
            throw NemotronError.configValue(
                path: c.path, key: key, value: "\(value)", expected: "[low, high] with low <= high")
        }
        return Float(lo)...Float(hi)
    }

    /// Largest size accepted for any dimension (hidden, vocabulary, heads, widths, experts): far
    /// above published models (vocabularies of 262,144), and small enough that products of sizes
    /// never overflow.
    public static let maxSize = 1 << 24

    /// `first × second` of two size keys, each checked to be in 0...`maxSize` first.
    private static func product(_ c: JSONObject, _ firstKey: String, _ first: Int, _ secondKey: String, _ second: Int)
        throws -> Int
    {
        for (key, value) in [(firstKey, first), (secondKey, second)] where !(0...maxSize).contains(value) {
            throw NemotronError.configValue(
                path: c.path, key: key, value: "\(value)", expected: "an integer in 0...\(maxSize)")
        }
        return first * second
    }

    /// Value ranges: sizes positive (and at most `maxSize`), the norm epsilon finite and
    /// positive, divisibility where heads or experts are grouped. Each error names the key as
    /// the file spells it.
    private func validate(_ c: JSONObject) throws {
        let path = c.path
        /// The alias the file uses, for messages (else the first).
        func key(_ names: String...) -> String { c.raw(names)?.key ?? names[0] }
        func require(_ ok: Bool, _ key: String, _ value: Int, _ expected: String) throws {
            if !ok { throw NemotronError.configValue(path: path, key: key, value: "\(value)", expected: expected) }
        }
        func size(_ value: Int, _ key: String) throws {
            try require((1...Self.maxSize).contains(value), key, value, "a positive integer up to \(Self.maxSize)")
        }
        try size(hiddenSize, "hidden_size")
        try size(vocabSize, "vocab_size")
        // Sizes of layer kinds the pattern lacks are not used, but the shard plan splits them
        // all: none may be negative or huge (a negative intermediate_size in a MoE-only config
        // trapped the plan, found by the config fuzz target).
        let sizes: [(Int, String)] = [
            (numHeads, "num_attention_heads"), (numKVHeads, "num_key_value_heads"),
            (headDim, key("head_dim", "attention_head_dim")), (mambaHeads, "mamba_num_heads"),
            (mambaHeadDim, "mamba_head_dim"), (ssmStateSize, "ssm_state_size"),
            (mambaGroups, key("n_groups", "mamba_n_groups")), (convKernel, key("conv_kernel", "mamba_d_conv")),
            (chunkSize, key("chunk_size", "mamba_chunk_size")), (ffnSize, "intermediate_size"),
            (numExperts, key("n_routed_experts", "num_local_experts")), (expertsPerToken, "num_experts_per_tok"),
            (moeFFNSize, "moe_intermediate_size"), (moeLatentSize ?? 0, "moe_latent_size"),
            (routerGroups, "n_group"), (routerTopKGroups, "topk_group"),
        ]
        for (value, name) in sizes where !(0...Self.maxSize).contains(value) {
            try require(false, name, value, "an integer in 0...\(Self.maxSize)")
        }
        if layerKinds.isEmpty {
            throw NemotronError.configValue(
                path: path, key: "hybrid_override_pattern", value: "\"\"", expected: "at least one layer")
        }
        if !(normEps.isFinite && normEps > 0) {
            let epsKey = key("rms_norm_eps", "layer_norm_epsilon", "norm_eps")
            throw NemotronError.configValue(
                path: path, key: epsKey, value: c.raw([epsKey]).map { JSONObject.describe($0.value) } ?? "\(normEps)",
                expected: "a finite positive number that is not 0 in float32 (typically 1e-5)")
        }
        if mtpLayers < 0 { try require(false, "num_nextn_predict_layers", mtpLayers, "an integer >= 0") }
        if has(.mamba) {
            try size(mambaHeads, "mamba_num_heads")
            try size(mambaHeadDim, "mamba_head_dim")
            try size(ssmStateSize, "ssm_state_size")
            try require(
                (1...Self.maxSize).contains(mambaGroups) && mambaHeads % mambaGroups == 0,
                key("n_groups", "mamba_n_groups"),
                mambaGroups, "a divisor of mamba_num_heads (\(mambaHeads))")
            try require(
                (1...1024).contains(convKernel), key("conv_kernel", "mamba_d_conv"), convKernel,
                "an integer in 1...1024")
            try size(chunkSize, key("chunk_size", "mamba_chunk_size"))
        }
        if has(.attention) {
            try size(numHeads, "num_attention_heads")
            try size(headDim, key("head_dim", "attention_head_dim"))
            try require(
                (1...Self.maxSize).contains(numKVHeads) && numHeads % numKVHeads == 0, "num_key_value_heads",
                numKVHeads,
                "a divisor of num_attention_heads (\(numHeads))")
        }
        if has(.mlp) { try size(ffnSize, "intermediate_size") }
        if has(.moe) {
            try size(numExperts, key("n_routed_experts", "num_local_experts"))
            try require(
                (1...numExperts).contains(expertsPerToken), "num_experts_per_tok", expertsPerToken, "1...\(numExperts)")
            try require(
                routerGroups > 0 && numExperts % routerGroups == 0, "n_group", routerGroups,
                "a divisor of n_routed_experts (\(numExperts))")
            try require(
                (1...routerGroups).contains(routerTopKGroups), "topk_group", routerTopKGroups, "1...\(routerGroups)")
            try require(
                routerGroups == 1 || numExperts / routerGroups >= 2, "n_group", routerGroups,
                "groups of at least 2 experts")
            try size(moeFFNSize, "moe_intermediate_size")
            if let moeLatentSize { try size(moeLatentSize, "moe_latent_size") }
        }
    }
}
