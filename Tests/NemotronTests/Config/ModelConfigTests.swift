import Foundation
import Testing

@testable import Nemotron

@Suite("ModelConfig decoding")
struct ModelConfigTests {
    /// A minimal valid config in the old (remote-code) spelling; tests replace or drop keys.
    static var base: [String: Any] {
        [
            "model_type": "nemotron_h", "hidden_size": 64, "vocab_size": 512, "hybrid_override_pattern": "M*-E",
            "num_attention_heads": 8, "num_key_value_heads": 2, "mamba_num_heads": 16, "mamba_head_dim": 8,
            "ssm_state_size": 16, "n_groups": 2, "intermediate_size": 128, "n_routed_experts": 8,
            "num_experts_per_tok": 2, "moe_intermediate_size": 32, "moe_shared_expert_intermediate_size": 48,
        ]
    }

    func decode(_ changes: [String: Any?] = [:]) throws -> ModelConfig {
        var values = Self.base
        for (key, value) in changes { values[key] = value }
        return try ModelConfig(json: JSONObject(values: values, path: "config.json"))
    }

    func error(_ changes: [String: Any?]) -> String {
        do {
            _ = try decode(changes)
            return "no error"
        } catch { return "\(error)" }
    }

    @Test("every committed fixture config decodes", arguments: Fixture.all)
    func fixtures(fixture: Fixture) throws {
        let config = try ModelConfig(directory: fixture.directory)
        #expect(config.hiddenSize == 64)
        #expect(config.timeStepLimit == 0...Float.infinity)
        #expect(config.eosTokenIds == [2])
    }

    @Test("pattern as string, list of characters, layers_block_type and legacy names")
    func patternForms() throws {
        let kinds: [LayerKind] = [.mamba, .attention, .mlp, .moe]
        #expect(try decode().layerKinds == kinds)
        #expect(try decode(["hybrid_override_pattern": ["M", "*", "-", "E"]]).layerKinds == kinds)
        #expect(
            try decode([
                "hybrid_override_pattern": nil,
                "layers_block_type": ["linear_attention", "full_attention", "mlp", "moe"],
            ]).layerKinds == kinds)
        #expect(
            try decode(["hybrid_override_pattern": nil, "layers_block_type": ["mamba", "attention", "mlp", "moe"]])
                .layerKinds == kinds)
    }

    @Test("key aliases")
    func aliases() throws {
        #expect(try decode(["attention_head_dim": 24]).headDim == 24)
        #expect(try decode(["head_dim": 12, "attention_head_dim": 24]).headDim == 12)
        #expect(try decode([:]).headDim == 8)
        #expect(try decode(["n_groups": nil, "mamba_n_groups": 4]).mambaGroups == 4)
        #expect(try decode(["rms_norm_eps": 1e-6]).normEps == 1e-6)
        #expect(try decode(["layer_norm_epsilon": 2e-6]).normEps == 2e-6)
        #expect(try decode(["norm_eps": 3e-6]).normEps == 3e-6)
        #expect(try decode(["mamba_d_conv": 3]).convKernel == 3)
        #expect(try decode(["n_shared_experts": 2]).sharedExpertFFNSize == 96)
    }

    @Test("time_step_limit forms")
    func timeStepLimit() throws {
        #expect(try decode(["time_step_limit": [0.0, ["__float__": "Infinity"]]]).timeStepLimit == 0...Float.infinity)
        #expect(try decode(["time_step_limit": [0.0, "inf"]]).timeStepLimit == 0...Float.infinity)
        #expect(try decode(["time_step_limit": [0.001, 0.1]]).timeStepLimit == Float(0.001)...Float(0.1))
        #expect(try decode([:]).timeStepLimit == 0...Float.infinity)
        #expect(error(["time_step_limit": [1.0]]).contains("time_step_limit"))
    }

    @Test("derived sizes")
    func derived() throws {
        let c = try decode()
        #expect(c.mambaInner == 128 && c.convChannels == 192 && c.inProjSize == 336)
    }

    @Test("clear errors for bad configs")
    func errors() {
        #expect(
            error(["model_type": "llama"])
                == "config.json: key 'model_type' has value \"llama\"; expected \"nemotron_h\"")
        #expect(error(["hybrid_override_pattern": "M*X"]).contains("'X' at position 2"))
        #expect(error(["hybrid_override_pattern": "M*X"]).contains("'M', '*', '-', 'E'"))
        #expect(
            error(["hybrid_override_pattern": nil, "layers_block_type": ["mamba", "conv"]]).contains(
                "\"conv\" at position 1"))
        #expect(error(["hidden_size": nil]) == "config.json: required key 'hidden_size' is missing")
        #expect(error(["mamba_num_heads": nil]) == "config.json: required key 'mamba_num_heads' is missing")
        #expect(
            error(["hybrid_override_pattern": nil]).contains(
                "required key 'hybrid_override_pattern' or 'layers_block_type'"))
        #expect(error(["num_key_value_heads": 3]).contains("num_key_value_heads"))
        #expect(error(["num_hidden_layers": 5]).contains("num_hidden_layers"))
        #expect(error(["hidden_size": "64"]).contains("expected an integer"))
        #expect(error(["attention_bias": true]).contains("attention_bias"))
        #expect(error(["n_group": 3]).contains("n_group"))
    }

    @Test("missing config.json names the file")
    func missingFile() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: NemotronError.fileMissing(path: directory.file("config.json").path, what: "a JSON file")) {
            try ModelConfig(directory: directory.url)
        }
    }
}
