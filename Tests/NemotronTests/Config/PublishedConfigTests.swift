import Foundation
import Testing

@testable import Nemotron

@Suite("JSON as Python writes it")
struct JSONParserTests {
    func parse(_ text: String) throws -> Any { try JSONParser.parse(Data(text.utf8), path: "f.json") }

    func error(_ text: String) -> String {
        do {
            _ = try parse(text)
            return "no error"
        } catch { return "\(error)" }
    }

    @Test("bare Infinity, -Infinity and NaN are numbers outside strings")
    func nonFinite() throws {
        let list = try #require(try parse("[0.0, Infinity, -Infinity, NaN, \"Infinity\"]") as? [Any])
        #expect((list[1] as? NSNumber)?.doubleValue == .infinity)
        #expect((list[2] as? NSNumber)?.doubleValue == -.infinity)
        #expect((list[3] as? NSNumber)?.doubleValue.isNaN == true)
        #expect(list[4] as? String == "Infinity")
    }

    @Test("values come out as JSONSerialization gives them")
    func values() throws {
        let object = try #require(
            try parse(
                #"{"i": -12, "d": 1.5e-3, "z": 0, "t": true, "f": false, "n": null, "a": [], "o": {}, "i": 7, "#
                    + #""s": "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#
            ) as? [String: Any])
        #expect(JSONObject.integer(object["i"]!) == 7)  // the last of a repeated key, as in Python
        #expect((object["d"] as? NSNumber)?.doubleValue == 1.5e-3)
        #expect(JSONObject.integer(object["z"]!) == 0)
        #expect(object["t"] as? Bool == true && object["f"] as? Bool == false && object["n"] is NSNull)
        #expect(JSONObject.numeric(object["t"]!) == nil)
        #expect(object["s"] as? String == "a\"\\/\u{8}\u{C}\n\r\té😀")
        #expect((object["a"] as? [Any])?.isEmpty == true && (object["o"] as? [String: Any])?.isEmpty == true)
        #expect((try parse("123456789012345678901234") as? NSNumber)?.doubleValue == 123456789012345678901234.0)
    }

    @Test("a U+FEFF opening a string is kept (JSONSerialization drops it)")
    func byteOrderMarkInStrings() throws {
        let object = try #require(try parse("{\"\u{FEFF}k\": \"\u{FEFF}x\", \"e\": \"\\ufeffy\"}") as? [String: Any])
        #expect(object["\u{FEFF}k"] as? String == "\u{FEFF}x")
        #expect(object["e"] as? String == "\u{FEFF}y")
        #expect((try parse("\u{FEFF}{\"a\": 1}") as? [String: Any])?["a"] != nil)  // a file's BOM is not text
    }

    @Test(
        "every other JSON error names the file, line and column",
        arguments: [
            ("{\n  \"x\": Infinit\n}", "line 2, column 8: expected a value, found 'Infinit'"),
            ("{\"a\": 1,}", "line 1, column 9: expected a string key in double quotes, found '}'"),
            ("[1, 2", "line 1, column 6: expected ',' or ']' in an array, found the end of the file"),
            ("{\"a\" 1}", "line 1, column 6: expected ':' after an object key, found '1'"),
            ("[inf]", "line 1, column 2: expected a value, found 'inf'"),
            ("[+Infinity]", "line 1, column 2: expected a value, found '+Infinity'"),
            ("[-NaN]", "line 1, column 3: expected a digit, found 'NaN'"),
            ("[01]", "line 1, column 3: expected ',' or ']' in an array, found '1'"),
            ("[1.]", "line 1, column 3: expected ',' or ']' in an array, found '.'"),
            ("\"é\\x\"", "line 1, column 3: invalid escape in a string"),
            ("\"a\nb\"", "line 1, column 3: invalid control character U+000A in a string"),
            ("\"abc", "line 1, column 1: unterminated string"),
            ("{} {}", "line 1, column 4: extra data after the JSON value"),
            ("", "line 1, column 1: expected a value, found the end of the file"),
            ("[\"日本\", tru]", "line 1, column 8: expected a value, found 'tru'"),
        ])
    func errors(text: String, message: String) {
        #expect(error(text) == "f.json: cannot read: invalid JSON at \(message)")
    }

    @Test("invalid UTF-8 in a string is an error")
    func invalidUTF8() {
        let data = Data([0x5B, 0x22, 0x61, 0xFF, 0x22, 0x5D])
        #expect(throws: NemotronError.self) { try JSONParser.parse(data, path: "f.json") }
    }
}

@Suite("config.json forms as published, and the ones refused")
struct PublishedConfigTests {
    /// Writes `config.json` (and other files) into a fresh directory.
    func directory(_ files: [String: String]) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        for (name, text) in files { try text.write(to: directory.file(name), atomically: false, encoding: .utf8) }
        return directory
    }

    /// The remote-code form of the test base config as JSON text, with `changes` spliced in.
    func configText(_ changes: String = "") -> String {
        """
        {"model_type": "nemotron_h", "hidden_size": 64, "vocab_size": 512, "hybrid_override_pattern": "M*-E",
         "num_attention_heads": 8, "num_key_value_heads": 2, "mamba_num_heads": 16, "mamba_head_dim": 8,
         "ssm_state_size": 16, "n_groups": 2, "intermediate_size": 128, "n_routed_experts": 8,
         "num_experts_per_tok": 2, "moe_intermediate_size": 32, "moe_shared_expert_intermediate_size": 48\(changes)}
        """
    }

    func loadError(_ files: [String: String]) throws -> String {
        let directory = try directory(files)
        do {
            _ = try ModelConfig(directory: directory.url)
            return "no error"
        } catch { return "\(error)".replacingOccurrences(of: directory.url.path + "/", with: "") }
    }

    @Test("bare Infinity in time_step_limit, attention_head_dim, torch_dtype")
    func remoteCodeForm() throws {
        let directory = try directory([
            "config.json": configText(
                ", \"time_step_limit\": [\n    0.0,\n    Infinity\n  ], \"attention_head_dim\": 24, "
                    + "\"torch_dtype\": \"bfloat16\"")
        ])
        let config = try ModelConfig(directory: directory.url)
        #expect(
            config.timeStepLimit == 0...Float.infinity && config.headDim == 24 && config.declaredDType == "bfloat16")
    }

    @Test("a non-finite literal where a number is not allowed names the file and the key")
    func nonFiniteWhereNotAllowed() throws {
        #expect(
            try loadError([
                "config.json": configText().replacingOccurrences(
                    of: "\"hidden_size\": 64", with: "\"hidden_size\": Infinity")
            ])
                == "config.json: key 'hidden_size' has value Infinity; expected an integer")
        #expect(
            try loadError(["config.json": configText(", \"rms_norm_eps\": NaN")])
                == "config.json: key 'rms_norm_eps' has value NaN; expected a finite number")
        #expect(
            try loadError(["config.json": configText(", \"num_key_value_heads\": -Infinity")]).contains(
                "key 'num_key_value_heads' has value -Infinity; expected an integer"))
        #expect(
            try loadError(["config.json": configText(", \"x\": Infinit")])
                == "config.json: cannot read: invalid JSON at line 4, column 105: expected a value, found 'Infinit'")
    }

    @Test("the MTP keys and transformers-5 layer names are accepted; MTP layers are not part of the pattern")
    func mtpKeys() throws {
        let directory = try directory([
            "config.json": configText(
                ", \"num_nextn_predict_layers\": 1, \"mtp_hybrid_override_pattern\": \"*E\", "
                    + "\"mtp_layers_block_type\": [\"attention\", \"moe\"], \"dtype\": \"bfloat16\", "
                    + "\"layers_block_type\": [\"linear_attention\", \"full_attention\", \"mlp\", \"moe\"]")
        ])
        let config = try ModelConfig(directory: directory.url)
        #expect(config.pattern == "M*-E" && config.mtpLayers == 1 && config.declaredDType == "bfloat16")
        #expect(
            try loadError([
                "config.json": configText(", \"layers_block_type\": [\"mamba\", \"mamba\", \"mlp\", \"moe\"]")
            ])
            .contains(
                "key 'layers_block_type' has value \"MM-E\" as a pattern; expected the layers of "
                    + "hybrid_override_pattern (\"M*-E\")"))
    }

    @Test("eos ids: config.json and generation_config.json merged; the tokenizer's eos_token joins the stop ids")
    func eosUnion() throws {
        let directory = try directory([
            "config.json": configText(", \"eos_token_id\": [2, 11]"),
            "generation_config.json": "{\"eos_token_id\": [11, 12]}",
        ])
        #expect(try ModelConfig(directory: directory.url).eosTokenIds == [2, 11, 12])
    }

    @Test("the VL wrapper: an unknown model_type inside llm_config, a missing llm_config")
    func wrapperErrors() throws {
        let inner = configText().replacingOccurrences(of: "\"nemotron_h\"", with: "\"llama\"")
        #expect(
            try loadError([
                "config.json": "{\"model_type\": \"NemotronH_Nano_VL_V2\", \"llm_config\": \(inner)}"
            ])
                == "config.json (llm_config of NemotronH_Nano_VL_V2): key 'model_type' has value \"llama\"; "
                + "expected \"nemotron_h\"")
        #expect(
            try loadError(["config.json": "{\"model_type\": \"NemotronH_Nano_VL_V2\"}"])
                == "config.json: required key 'llm_config' is missing")
        let wrapped = try directory([
            "config.json": "{\"architectures\": [\"NemotronH_Nano_VL_V2\"], \"model_type\": \"NemotronH_Nano_VL_V2\", "
                + "\"eos_token_id\": 7, \"llm_config\": \(configText(", \"eos_token_id\": 2"))}"
        ])
        let config = try ModelConfig(directory: wrapped.url)
        #expect(config.weightPrefix == "language_model." && config.eosTokenIds == [7, 2] && config.pattern == "M*-E")
    }

    @Test("quantization_config and hf_quant_config.json: ModelOpt's forms and ours, unknown ones named")
    func quantization() throws {
        func config(_ quantization: String) -> [String: String] {
            ["config.json": configText(", \"quantization_config\": \(quantization)")]
        }
        func parsed(_ files: [String: String]) throws -> QuantizationConfig? {
            let held = try directory(files)
            return try ModelConfig(directory: held.url).quantization
        }
        let fp8 = try parsed(
            config(
                "{\"quant_method\": \"modelopt\", \"quant_algo\": \"fp8\", \"ignore\": [\"lm_head\"], "
                    + "\"kv_cache_scheme\": {\"type\": \"float\", \"num_bits\": 8}}"))
        #expect(fp8?.format == .fp8 && fp8?.algorithm == "FP8" && fp8?.kvCacheAlgorithm == "FP8")
        #expect(fp8?.expectation(module: "lm_head") == .ownDType)
        #expect(fp8?.expectation(module: "backbone.layers.0.mixer.in_proj") == .quantized(.fp8))
        let legacy = try parsed([
            "config.json": configText(),
            "hf_quant_config.json":
                "{\"producer\": {\"name\": \"modelopt\", \"version\": \"0.29\"}, \"quantization\": "
                + "{\"quant_algo\": \"NVFP4\", \"group_size\": 16, \"exclude_modules\": [\"*.mixer.o_proj\"]}}",
        ])
        #expect(legacy?.format == .nvfp4 && legacy?.blockAlignment == 16)
        #expect(legacy?.expectation(module: "backbone.layers.1.mixer.o_proj") == .ownDType)
        let mixed = try parsed(
            config(
                "{\"quant_method\": \"modelopt\", \"quant_algo\": \"MIXED_PRECISION\", \"quantized_layers\": "
                    + "{\"backbone.layers.0.mixer.in_proj\": {\"quant_algo\": \"FP8\"}, "
                    + "\"backbone.layers.3.mixer.experts.0.up_proj\": {\"quant_algo\": \"NVFP4\", "
                    + "\"group_size\": 16}}}"))
        #expect(mixed?.formats == [.fp8, .nvfp4] && mixed?.blockAlignment == 16)
        #expect(mixed?.expectation(module: "backbone.layers.0.mixer.out_proj") == .ownDType)

        #expect(
            try loadError(config("{\"quant_method\": \"modelopt\", \"quant_algo\": \"INT4_AWQ\"}"))
                == "config.json: key 'quantization_config.quant_algo' has value \"INT4_AWQ\"; expected one of FP8, "
                + "MIXED_PRECISION, NVFP4, W4A16_NVFP4 for quant_method modelopt")
        #expect(
            try loadError(config("{\"quant_method\": \"gptq\", \"bits\": 4}"))
                .hasPrefix(
                    "config.json: key 'quantization_config.quant_method' has value \"gptq\"; expected \"modelopt\""))
        #expect(
            try loadError(config("{\"quant_method\": \"modelopt\", \"quant_algo\": \"MIXED_PRECISION\"}"))
                .contains("key 'quantization_config.quantized_layers' has value (missing or empty)"))
        #expect(
            try loadError(
                config(
                    "{\"quant_method\": \"modelopt\", \"quant_algo\": \"MIXED_PRECISION\", \"quantized_layers\": "
                        + "{\"backbone.layers.0.mixer.in_proj\": {\"quant_algo\": \"FP8_PB_WO\"}}}"))
                == "config.json: key 'quantization_config.quantized_layers.backbone.layers.0.mixer.in_proj.quant_algo' "
                + "has value \"FP8_PB_WO\"; expected one of FP8, NVFP4, W4A16_NVFP4")
        #expect(
            try loadError(config("{\"quant_method\": \"modelopt\", \"quant_algo\": \"NVFP4\", \"group_size\": 32}"))
                == "config.json: key 'quantization_config.group_size' has value 32; expected 16, the block size "
                + "of nvfp4")
        #expect(
            try loadError([
                "config.json": configText(),
                "hf_quant_config.json":
                    "{\"producer\": {\"name\": \"modelopt\"}, \"quantization\": {\"quant_algo\": \"W8A8\"}}",
            ]).hasPrefix("hf_quant_config.json: key 'quantization.quant_algo' has value \"W8A8\""))
        let vl = try loadError([
            "config.json":
                "{\"model_type\": \"NemotronH_Nano_VL_V2\", \"quantization_config\": {\"quant_method\": \"fp8\"}, "
                + "\"llm_config\": \(configText())}"
        ])
        #expect(vl.contains("key 'quantization_config.quant_method' has value \"fp8\""))
    }

    @Test("nemotron_h_puzzle and per-layer block_configs are refused by name")
    func puzzle() throws {
        let puzzle = configText(", \"block_configs\": [{\"attention\": {}}], \"num_hidden_layers\": null")
            .replacingOccurrences(of: "\"nemotron_h\"", with: "\"nemotron_h_puzzle\"")
        #expect(
            try loadError(["config.json": puzzle])
                == "config.json: key 'model_type' has value \"nemotron_h_puzzle\"; expected \"nemotron_h\" with one "
                + "set of sizes for every layer (per-layer block_configs of nemotron_h_puzzle derivatives are not "
                + "supported)"
        )
        #expect(
            try loadError(["config.json": configText(", \"block_configs\": []")]).contains(
                "key 'block_configs' has value (a list of per-layer settings)"))
    }
}
