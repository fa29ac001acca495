import Foundation
import Testing

@testable import Nemotron

/// A quantized checkpoint made by scripts/make-quant-fixtures.py, with transformers' outputs on
/// its dequantized weights.
struct QuantFixture: CustomStringConvertible, Sendable {
    let name: String

    static let root = Fixture.root.appendingPathComponent("quant")
    /// ModelOpt's forms (numpy replicas of its quantizers) and nemotron-run's own.
    static let modelopt = ["hybrid-fp8", "hybrid-nvfp4", "latent-mixed"].map(QuantFixture.init)
    static let all = modelopt + ["hybrid-int8", "hybrid-int4"].map(QuantFixture.init)
    /// The float32 sources the quantized ones were made from.
    static let hybrid = root.appendingPathComponent("hybrid")
    static let latent = root.appendingPathComponent("latent")

    var description: String { name }
    var directory: URL { Self.root.appendingPathComponent(name) }
    var reference: Reference {
        get throws { try Reference(url: directory.appendingPathComponent("reference.safetensors")) }
    }

    func engine(compute: ComputeDType = .f32) throws -> Engine {
        var settings = RunConfig()
        settings.model = directory.path
        settings.threads = 2
        settings.computeDType = compute
        return try Engine(settings: settings, world: SingleProcess())
    }
}

/// Rewrites a checkpoint's single model.safetensors, dropping or renaming tensors or changing
/// their shapes (same bytes), so tests can damage a copy.
func rewriteSafetensors(
    _ directory: URL, drop: Set<String> = [], shapes: [String: [Int]] = [:], dtypes: [String: String] = [:]
) throws {
    let url = directory.appendingPathComponent("model.safetensors")
    let original = try Data(contentsOf: url)
    let copy = directory.appendingPathComponent("original.safetensors.bak")
    try original.write(to: copy)
    let file = try SafetensorsFile(path: copy.path)
    let entries = file.entries.values.filter { !drop.contains($0.name) }.sorted { $0.name < $1.name }
    try SafetensorsStreamWriter.write(
        entries.map {
            .init(
                name: $0.name, dtype: dtypes[$0.name] ?? $0.dtypeName, shape: shapes[$0.name] ?? $0.shape,
                byteCount: $0.byteCount)
        }, to: url.path
    ) { UnsafeRawBufferPointer(start: file.pointer(entries[$0]), count: entries[$0].byteCount) }
    try FileManager.default.removeItem(at: copy)
}

/// config.json of a checkpoint directory with `change` applied to its object.
func editConfig(_ directory: URL, _ change: (inout [String: Any]) -> Void) throws {
    let url = directory.appendingPathComponent("config.json")
    var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    change(&json)
    try JSONSerialization.data(withJSONObject: json).write(to: url)
}

@Suite("Quantized checkpoints against transformers on their dequantized weights")
struct QuantizedCheckpointTests {
    @Test("exact mode: prefill logits within 1e-4, identical greedy ids, step logits", arguments: QuantFixture.all)
    func exact(fixture: QuantFixture) throws {
        let reference = try fixture.reference
        let engine = try fixture.engine()
        let prompt = try reference.ints("prompt_ids")
        let logits = try engine.makeScheduler().prefillLogits(prompt)
        #expect(maxAbsDifference(logits, try reference.floats("prefill_logits")) <= 1e-4)
        let expected = try reference.ints("greedy_ids")
        let result = try #require(
            try engine.generate(
                [Request(prompt: prompt, maxNewTokens: expected.count, keepLogits: true)], ignoreEOS: true
            ).first)
        #expect(result.ids == expected)
        #expect(maxAbsDifference(result.stepLogits.flatMap { $0 }, try reference.floats("step_logits")) <= 1e-4)
    }

    /// bf16 prefill (dequantized tiles rounded to bf16 for the bf16 GEMM where the CPU has it),
    /// and under int8 int8 activations (decode, and prefill against int8 and int4 weights on
    /// AVX512-VNNI): the greedy ids are transformers' wherever its choice leads the runner-up by
    /// more than twice the mode's logit tolerance (a closer choice may flip, and the run then leaves
    /// the reference); the distance of the logits is printed. Likewise a prompt token that an MoE
    /// router sends to other experts than under f32 compute (a near tie moved by the activations'
    /// rounding) leaves the reference: its prefill logits are left out of the tolerance, and at most
    /// one such token is allowed.
    @Test(
        "bf16 and int8 compute: greedy ids as transformers' wherever its choice is clear, max |Δ| printed",
        arguments: QuantFixture.all, [ComputeDType.bf16, .int8])
    func fastCompute(fixture: QuantFixture, compute: ComputeDType) throws {
        let reference = try fixture.reference
        let engine = try fixture.engine(compute: compute)
        let prompt = try reference.ints("prompt_ids")
        // Each prompt token's experts over all MoE layers, and the prefill logits.
        func run(_ engine: Engine) throws -> (routes: [[Int]], logits: [Float]) {
            let scheduler = engine.makeScheduler()
            let trace = RoutingTrace()
            scheduler.workspace.routingTrace = trace
            let logits = try scheduler.prefillLogits(prompt)
            let layers = trace.experts.keys.sorted().map { trace.experts[$0]! }
            return (prompt.indices.map { t in layers.flatMap { $0[t] } }, logits)
        }
        let (routes, logits) = try run(engine)
        let f32Routes = try run(try fixture.engine(compute: .f32)).routes
        let rerouted = prompt.indices.filter { routes[$0] != f32Routes[$0] }
        #expect(rerouted.count <= 1, "prompt tokens routed to other experts than under f32: \(rerouted)")
        let V = engine.config.vocabSize
        let kept = prompt.indices.filter { !rerouted.contains($0) }
        let expectedPrefill = try reference.floats("prefill_logits")
        let prefill = maxAbsDifference(
            kept.flatMap { logits[$0 * V..<($0 + 1) * V] }, kept.flatMap { expectedPrefill[$0 * V..<($0 + 1) * V] })
        let expected = try reference.ints("greedy_ids")
        let result = try #require(
            try engine.generate(
                [Request(prompt: prompt, maxNewTokens: expected.count, keepLogits: true)], ignoreEOS: true
            ).first)
        // int8 activations carry a rounding error of up to 1/254 of each block's max |x|.
        let tolerance: Float = compute == .int8 ? 0.25 : 0.1
        let stepLogits = try reference.floats("step_logits")
        var same = 0
        while same < expected.count && result.ids[same] == expected[same] { same += 1 }
        if same < expected.count {
            let row = stepLogits[same * V..<(same + 1) * V].sorted(by: >)
            #expect(row[0] - row[1] < 2 * tolerance, "step \(same) flipped with a gap of \(row[0] - row[1])")
        }
        let steps = maxAbsDifference(
            Array(result.stepLogits.prefix(same + 1).joined()), Array(stepLogits.prefix((same + 1) * V)))
        #expect(prefill <= tolerance && steps <= tolerance)
        print(
            "\(fixture) compute \(compute): logits max |Δ| prefill \(prefill), steps \(steps); greedy ids "
                + "\(same) of \(expected.count) as transformers'; prompt tokens routed otherwise than under f32 "
                + "\(rerouted)")
    }

    @Test("each weight is held in its stored format; ignored and unlisted modules keep their own dtype")
    func formats() throws {
        func held(_ name: String) throws -> (layers: [String], head: WeightFormat) {
            let model = try QuantFixture(name: name).engine().model
            return (model.heldWeights.layers.map(\.formats), model.heldWeights.lmHead.format)
        }
        let fp8 = try held("hybrid-fp8")
        #expect(fp8.head == .f32 && fp8.layers[0] == "in_proj fp8, out_proj fp8")
        #expect(
            fp8.layers[2] == "gate f32, experts.*.up_proj fp8, experts.*.down_proj fp8, shared_experts.up_proj fp8, "
                + "shared_experts.down_proj fp8")
        let nvfp4 = try held("hybrid-nvfp4")
        #expect(nvfp4.head == .nvfp4 && nvfp4.layers[1] == "q_proj f32, k_proj f32, v_proj f32, o_proj f32")
        #expect(nvfp4.layers[3] == "up_proj nvfp4, down_proj nvfp4")
        let mixed = try held("latent-mixed")
        #expect(mixed.head == .f32 && mixed.layers[2] == "q_proj fp8, k_proj fp8, v_proj fp8, o_proj nvfp4")
        #expect(
            mixed.layers[1] == "gate f32, fc1_latent_proj fp8, fc2_latent_proj fp8, experts.*.up_proj nvfp4, "
                + "experts.*.down_proj nvfp4, shared_experts.up_proj fp8, shared_experts.down_proj fp8")
        let int4 = try held("hybrid-int4")
        #expect(int4.layers[4] == "in_proj int4, out_proj int4" && int4.head == .int8, "int4 keeps its head in int8")
        let onLoad = try NemotronH(directory: QuantFixture.hybrid, quantize: .int4).heldWeights
        #expect(onLoad.lmHead.format == .int8 && onLoad.layers[4].formats == "in_proj int4, out_proj int4")
    }

    @Test("weights held in memory are the quantized bytes, not widened")
    func bytesHeld() throws {
        let float = try NemotronH(directory: QuantFixture.hybrid)
        for (name, ratio) in [("hybrid-int8", 0.27), ("hybrid-int4", 0.15), ("hybrid-fp8", 0.27)] {
            let model = try QuantFixture(name: name).engine().model
            let quantized = model.heldWeights.layers.reduce(0) { $0 + $1.bytes }
            let original = float.heldWeights.layers.reduce(0) { $0 + $1.bytes }
            #expect(Double(quantized) <= Double(original) * ratio + 2048 * 4, "\(name): \(quantized) of \(original)")
        }
    }
}

extension ProcessSuites {
    @Suite("nemotron-run quantize and quantization on load")
    struct QuantizeTests {
        /// The command's fp8 and nvfp4 tensors equal the numpy ModelOpt replicas byte for byte
        /// (activation scales aside, which the command does not write), and its int8 and int4 ones
        /// the committed fixtures.
        @Test(
            "quantize writes the fixtures' bytes",
            arguments: [
                ("hybrid-fp8", "fp8", ["lm_head"]),
                ("hybrid-nvfp4", "nvfp4", ["*.mixer.q_proj", "*.mixer.k_proj", "*.mixer.v_proj", "*.mixer.o_proj"]),
                ("hybrid-int8", "int8", []), ("hybrid-int4", "int4", []),
            ])
        func matchesFixtures(name: String, format: String, ignore: [String]) throws {
            let directory = try TemporaryDirectory()
            let out = directory.file(format)
            let run = try CLI.run(
                ["quantize", "--model", QuantFixture.hybrid.path, "--out", out.path, "--format", format]
                    + ignore.flatMap { ["--ignore", $0] })
            #expect(run.status == 0, "\(run.stderr)")
            let ours = try SafetensorsFile(path: out.appendingPathComponent("model.safetensors").path)
            let theirs = try SafetensorsFile(
                path: QuantFixture(name: name).directory.appendingPathComponent("model.safetensors").path)
            let activationScales = ["input_scale", "k_scale", "v_scale"]
            let expected = theirs.entries.keys.filter { name in !activationScales.contains { name.hasSuffix($0) } }
            #expect(Set(ours.entries.keys) == Set(expected))
            for name in expected {
                guard let a = ours.entries[name], let b = theirs.entries[name] else { continue }
                #expect(a.dtypeName == b.dtypeName && a.shape == b.shape, "\(name)")
                let same = a.byteCount == b.byteCount && memcmp(ours.pointer(a), theirs.pointer(b), a.byteCount) == 0
                #expect(same, "\(name)")
            }
            let config = try ModelConfig(directory: out)
            #expect(config.quantization?.ignore == ignore)
        }

        @Test(
            "quantize-on-load gives the logits of the quantize command's checkpoint, bit for bit",
            arguments: [Fixture.all[0].directory, QuantFixture.hybrid, QuantFixture.latent],
            [LoadQuantization.int8, .int4])
        func onLoadEqualsCommand(source: URL, quantize: LoadQuantization) throws {
            let directory = try TemporaryDirectory()
            let out = directory.file("q")
            let run = try CLI.run([
                "quantize", "--model", source.path, "--out", out.path, "--format", quantize.rawValue,
            ])
            #expect(run.status == 0, "\(run.stderr)")
            let tokens = [5, 17, 200, 3, 99, 41, 7, 300, 12, 64, 1, 2]
            func logits(_ directory: URL, _ quantize: LoadQuantization) throws -> [Float] {
                var settings = RunConfig()
                settings.model = directory.path
                settings.threads = 2
                settings.quantize = quantize
                let engine = try Engine(settings: settings, world: SingleProcess())
                return try engine.makeScheduler().prefillLogits(tokens)
                    + (try engine.makeScheduler().prefillLogits(Array(tokens.prefix(3))))
            }
            #expect(try logits(source, quantize) == (try logits(out, .none)))
        }

        @Test("int8 on load stays close to the float model")
        func int8Quality() throws {
            let fixture = Fixture.all[0]
            var settings = RunConfig()
            settings.model = fixture.directory.path
            settings.quantize = .int8
            let engine = try Engine(settings: settings, world: SingleProcess())
            let reference = try fixture.reference
            let logits = try engine.makeScheduler().prefillLogits(try reference.ints("prompt_ids"))
            let expected = try reference.floats("prefill_logits")
            let distance = maxAbsDifference(logits, expected)
            #expect(distance <= 0.3)
            // The argmax is the float model's wherever it leads the runner-up by more than twice
            // the distance (int8 prefill activations move logits by up to ~0.2 here; closer
            // choices may flip).
            let V = engine.config.vocabSize
            let clear = (0..<expected.count / V).filter { t in
                let top = expected[t * V..<(t + 1) * V].sorted(by: >)
                return top[0] - top[1] > 2 * distance
            }
            let agree = clear.filter { t in
                let row = { (values: [Float]) in values[t * V..<(t + 1) * V].indices.max { values[$0] < values[$1] } }
                return row(logits) == row(expected)
            }
            #expect(agree == clear)
            #expect(!clear.isEmpty, "no clear choice to check")
        }
    }
}
