import Foundation
import Testing

@testable import Nemotron

extension ProcessSuites {
    /// Quantized checkpoints under real MPI: each rank reads its own slices of the quantized
    /// weights and their scales (or quantizes its own slices on load), and the logits still
    /// match transformers on the dequantized weights.
    @Suite("Quantized weights under mpirun", .serialized)
    struct QuantizedTensorParallelTests {
        typealias TP = TensorParallelTests

        func tokens(_ reference: Reference) throws -> String {
            try reference.ints("prompt_ids").map(String.init).joined(separator: ",")
        }

        /// `logits` and greedy `generate` at `ranks` against the fixture's reference, in exact mode.
        func check(ranks: Int, model: URL, reference: Reference, extra: [String] = []) throws {
            let extra = ["--compute-dtype", "f32"] + extra
            let directory = try TemporaryDirectory()
            let logits = try TP.run(
                ranks: ranks,
                [
                    "logits", "--model", model.path, "--tokens", try tokens(reference), "--output",
                    directory.file("l.safetensors").path,
                ] + extra)
            #expect(logits.status == 0, "\(logits.stderr)")
            #expect(
                maxAbsDifference(
                    try Reference(url: directory.file("l.safetensors")).floats("logits"),
                    try reference.floats("prefill_logits")) <= 1e-4)
            let expected = try reference.ints("greedy_ids")
            let generate = try TP.run(
                ranks: ranks,
                [
                    "generate", "--model", model.path, "--tokens", try tokens(reference), "--max-new-tokens",
                    "\(expected.count)", "--ignore-eos", "--json", "--logits-output",
                    directory.file("s.safetensors").path,
                ] + extra)
            #expect(generate.status == 0, "\(generate.stderr)")
            let line = generate.stdout.split(separator: "\n").first.map(String.init) ?? ""
            let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(json["generated_ids"] as? [Int] == expected)
            #expect(
                maxAbsDifference(
                    try Reference(url: directory.file("s.safetensors")).floats("step_logits"),
                    try reference.floats("step_logits")) <= 1e-4)
        }

        @Test("ModelOpt FP8, NVFP4 and MIXED_PRECISION match transformers", arguments: [2, 4], QuantFixture.modelopt)
        func modelopt(ranks: Int, fixture: QuantFixture) throws {
            try check(ranks: ranks, model: fixture.directory, reference: try fixture.reference)
        }

        @Test(
            "int8 and int4 checkpoints, and the float source quantized on each rank's slices",
            arguments: [
                "int8", "int4",
            ])
        func ours(format: String) throws {
            let fixture = QuantFixture(name: "hybrid-\(format)")
            try check(ranks: 2, model: fixture.directory, reference: try fixture.reference)
            try check(
                ranks: 2, model: QuantFixture.hybrid, reference: try fixture.reference, extra: ["--quantize", format])
        }

        @Test(
            "int8 compute: each strategy's quantizing epilogue gives the unfused step logits bitwise",
            arguments: [AllReduceStrategy.mpi, .oneshot, .twoshot, .ring])
        func quantizingEpilogue(strategy: AllReduceStrategy) throws {
            let fixture = QuantFixture(name: "hybrid-int8")
            let reference = try fixture.reference
            let expected = try reference.ints("greedy_ids")
            var logits: [String: [Float]] = [:]
            for fuse in ["on", "off"] {
                let directory = try TemporaryDirectory()
                let run = try TP.run(
                    ranks: 2,
                    [
                        "generate", "--model", fixture.directory.path, "--tokens", try tokens(reference),
                        "--max-new-tokens", "\(expected.count)", "--ignore-eos", "--json", "--compute-dtype", "int8",
                        "--allreduce-strategy", strategy.rawValue, "--fuse-allreduce-norm", fuse, "--logits-output",
                        directory.file("s.safetensors").path,
                    ])
                #expect(run.status == 0, "\(run.stderr)")
                logits[fuse] = try Reference(url: directory.file("s.safetensors")).floats("step_logits")
                let line = run.stdout.split(separator: "\n").first.map(String.init) ?? ""
                let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(json["generated_ids"] as? [Int] == expected, "\(fuse)")
            }
            #expect(logits["on"] == logits["off"], "fused (quantizing) and unfused step logits differ")
            // int8 activations (prefill and decode) carry a rounding error of up to 1/254 of each
            // block's max |x|: the tolerance of QuantizedCheckpointTests.fastCompute under int8.
            #expect(maxAbsDifference(logits["on"]!, try reference.floats("step_logits")) <= 0.25)
        }

        @Test("a tensor-parallel size that would cut a block is refused by name on every rank")
        func cutBlock() throws {
            let run = try TP.run(
                ranks: 4, ["generate", "--model", QuantFixture.hybrid.path, "--tokens", "1,2", "--quantize", "int8"],
                timeout: 30)
            #expect(run.status != 0)
            #expect(
                run.stderr.contains(
                    "error: tensor-parallel size 4 does not fit this model: moe_intermediate_size (64) has fewer than "
                        + "one weight block of 32 per rank; legal sizes for this model: 1, 2"), "\(run.stderr)")
            #expect(run.stderr.components(separatedBy: "error: ").count == 2, "one message: \(run.stderr)")
        }

        @Test("inspect prints every rank's weight formats and bytes held per layer")
        func inspect() throws {
            let model = QuantFixture(name: "latent-mixed").directory.path
            let text = try TP.run(ranks: 2, ["inspect", "--model", model])
            #expect(text.status == 0, "\(text.stderr)")
            #expect(
                text.stdout.contains(
                    "quantization       modelopt MIXED_PRECISION (14 fp8, 34 nvfp4 modules); own dtype: lm_head"))
            for rank in 0..<2 { #expect(text.stdout.contains("rank \(rank) of 2: weights held")) }
            let layer = "layer 2 attention: q_proj fp8, k_proj fp8, v_proj fp8, o_proj nvfp4; "
            #expect(text.stdout.components(separatedBy: layer).count == 3, "\(text.stdout)")
            let json = try TP.run(ranks: 2, ["inspect", "--json", "--model", model])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let quantization = try #require((object["model"] as? [String: Any])?["quantization"] as? [String: Any])
            #expect(quantization["algorithm"] as? String == "MIXED_PRECISION")
            #expect(quantization["block_alignment"] as? Int == 16)
            let ranks = try #require(object["ranks"] as? [[String: Any]])
            #expect(ranks.count == 2)
            for rank in ranks {
                let layers = try #require(rank["layers"] as? [[String: Any]])
                #expect((layers[0]["formats"] as? [String: String])?["in_proj"] == "fp8")
                #expect((layers[1]["formats"] as? [String: String])?["experts.7.down_proj"] == "nvfp4")
                let bytes = layers.compactMap { $0["weight_bytes_held"] as? Int }.reduce(0, +)
                let head = try #require((rank["lm_head"] as? [String: Any])?["weight_bytes_held"] as? Int)
                #expect(bytes + head == rank["weight_bytes"] as? Int)
            }
        }
    }
}
