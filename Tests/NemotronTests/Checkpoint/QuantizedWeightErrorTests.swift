import Foundation
import Testing

@testable import Nemotron

@Suite("Quantized weights: bad inputs are named")
struct QuantizedWeightErrorTests {
    /// A damaged copy of a quantized fixture, and the error loading it gives (paths shortened).
    func loadError(_ fixture: String, quantize: WeightFormat? = nil, damage: (URL) throws -> Void) throws -> String {
        let directory = try TemporaryDirectory()
        let copy = directory.url.appendingPathComponent(fixture)
        try FileManager.default.copyItem(at: QuantFixture(name: fixture).directory, to: copy)
        try damage(copy)
        do {
            _ = try NemotronH(directory: copy, quantize: quantize)
            return "no error"
        } catch { return "\(error)".replacingOccurrences(of: copy.path + "/", with: "") }
    }

    @Test("a missing weight_scale or weight_scale_2 names the scale and its weight")
    func missingScale() throws {
        let inProj = "backbone.layers.0.mixer.in_proj"
        #expect(
            try loadError("hybrid-fp8") { try rewriteSafetensors($0, drop: [inProj + ".weight_scale"]) }.hasPrefix(
                "tensor '\(inProj).weight_scale' is missing: the fp8 weight '\(inProj).weight' needs it (searched "))
        #expect(
            try loadError("hybrid-nvfp4") { try rewriteSafetensors($0, drop: [inProj + ".weight_scale_2"]) }.hasPrefix(
                "tensor '\(inProj).weight_scale_2' is missing: the nvfp4 weight '\(inProj).weight' needs it"))
    }

    @Test("a scale of the wrong shape or dtype names the tensor and the expected shape")
    func badScale() throws {
        let scale = "backbone.layers.0.mixer.in_proj.weight_scale"
        let rows = 2 * 128 + 2 * 2 * 16 + 16  // in_proj rows of the hybrid fixture
        #expect(
            try loadError("hybrid-nvfp4") { try rewriteSafetensors($0, shapes: [scale: [rows * 4]]) }
                == "model.safetensors: tensor '\(scale)' has shape [\(rows * 4)]; expected [\(rows), 4] from "
                + "config.json")
        #expect(
            try loadError("hybrid-nvfp4") { try rewriteSafetensors($0, dtypes: [scale: "U8"]) }
                == "model.safetensors: tensor '\(scale)' has dtype U8; supported: F8_E4M3")
        #expect(
            try loadError("hybrid-int8") { try rewriteSafetensors($0, shapes: [scale: [rows, 1, 2]]) }
                == "model.safetensors: tensor '\(scale)' has shape [\(rows), 1, 2]; expected [\(rows), 2] from "
                + "config.json")
        let weight = "backbone.layers.0.mixer.out_proj.weight"
        #expect(
            try loadError("hybrid-nvfp4") { try rewriteSafetensors($0, shapes: [weight: [64 * 2, 32]]) }
                == "model.safetensors: tensor '\(weight)' has shape [128, 32]; expected [64, 64] from config.json")
    }

    @Test("quantized tensors need a quantization_config, and must agree with it")
    func configAgreement() throws {
        #expect(
            try loadError("hybrid-fp8") { try editConfig($0) { $0["quantization_config"] = nil } }
                == "model.safetensors: tensor 'backbone.layers.0.mixer.in_proj.weight' has the quantized dtype "
                + "F8_E4M3, but config.json has no quantization_config (nor is there an hf_quant_config.json)")
        let module = "backbone.layers.0.mixer.in_proj"
        let mismatch = try loadError("latent-mixed") { directory in
            try editConfig(directory) { json in
                var quantization = json["quantization_config"] as! [String: Any]
                var layers = quantization["quantized_layers"] as! [String: Any]
                layers[module] = ["quant_algo": "NVFP4", "group_size": 16]
                quantization["quantized_layers"] = layers
                json["quantization_config"] = quantization
            }
        }
        #expect(
            mismatch
                == "model.safetensors: tensor '\(module).weight' is F8_E4M3 (fp8), but config.json says '\(module)' is "
                + "nvfp4 (quant_algo MIXED_PRECISION)")
        let unlisted = try loadError("latent-mixed") { directory in
            try editConfig(directory) { json in
                var quantization = json["quantization_config"] as! [String: Any]
                quantization["quantized_layers"] = ["lm_head": ["quant_algo": "FP8"]]
                json["quantization_config"] = quantization
            }
        }
        #expect(unlisted == "no error", "dtypes decide where the config says nothing of a module")
        #expect(
            try loadError("hybrid-nvfp4") { try editConfig($0) { $0["quantization_config"] = ["quant_method": "x"] } }
                .hasPrefix("config.json: key 'quantization_config.quant_method' has value \"x\""))
    }

    @Test("--quantize on an already quantized checkpoint is refused")
    func quantizeQuantized() throws {
        #expect(
            try loadError("hybrid-nvfp4", quantize: .int8) { _ in }
                == "quantize = int8 is invalid; expected none for a checkpoint that is already quantized "
                + "(hf_quant_config.json: quantization has quant_method modelopt, quant_algo NVFP4); quantize loads "
                + "bf16, f16 or f32 checkpoints")
    }

    @Test("the quantize command refuses a quantized input and weights that are not whole blocks")
    func quantizeCommand() throws {
        let directory = try TemporaryDirectory()
        let quantizedError = try #require(throws: NemotronError.self) {
            try CheckpointQuantizer.quantize(
                from: QuantFixture(name: "hybrid-int8").directory, to: directory.file("a"), format: .int4)
        }
        let quantized = "\(quantizedError)"
        #expect(quantized.contains("it is already quantized (") && quantized.contains("quant_algo INT8)"))
        let moe = Fixture.all[1]  // shared expert width 48: down_proj inputs are not whole blocks of 32
        let blocksError = try #require(throws: NemotronError.self) {
            try CheckpointQuantizer.quantize(from: moe.directory, to: directory.file("b"), format: .int8)
        }
        let blocks = "\(blocksError)"
        #expect(
            blocks.hasSuffix(
                "tensor 'backbone.layers.1.mixer.shared_experts.down_proj.weight' has 48 inputs, not a whole number "
                    + "of int8 blocks of 32: it cannot be quantized to int8 (pass --ignore "
                    + "backbone.layers.1.mixer.shared_experts.down_proj to keep it f32)"), "\(blocks)")
        // The same model quantized on load: its shard plan already refuses the width.
        let onLoad = try #require(throws: NemotronError.self) {
            try NemotronH(directory: moe.directory, quantize: .int8)
        }
        #expect(
            "\(onLoad)".contains(
                "moe_shared_expert_intermediate_size (48) is not a whole number of weight blocks of 32"))
    }

    @Test("tensor-parallel sizes that would cut a block of the formats are refused by name")
    func shardAlignment() throws {
        let config = try ModelConfig(directory: QuantFixture.hybrid)
        #expect(ShardPlan.legalSizes(config: config) == [1, 2, 4, 8])
        #expect(ShardPlan.legalSizes(config: config, alignment: 16) == [1, 2, 4])
        #expect(ShardPlan.legalSizes(config: config, alignment: 32) == [1, 2])
        let errorError = try #require(throws: NemotronError.self) {
            try ShardPlan(config: config, layout: .tensorParallel(size: 4, rank: 0), alignment: 32)
        }
        let error = "\(errorError)"
        #expect(
            error
                == "tensor-parallel size 4 does not fit this model: moe_intermediate_size (64) has fewer than one "
                + "weight block of 32 per rank; legal sizes for this model: 1, 2")
        let mixed = try ModelConfig(directory: QuantFixture(name: "latent-mixed").directory)
        #expect(mixed.quantization?.blockAlignment == 16)
    }
}
