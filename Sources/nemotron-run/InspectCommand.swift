import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the effective settings, layer kinds, parameter count, stop ids, bytes per dtype, and each "
                + "rank's weight formats and bytes held per layer.",
            discussion: RunConfig.flagHelp)

        @OptionGroup var options: ModelOptions

        @Flag(
            name: .long,
            help: "Print one JSON object: settings, model summary, parameters, stop_token_ids and every rank's plan.")
        var json = false

        func run() throws {
            let engine = try loadEngine(try options.settings)
            // Every rank takes part in the gather; only rank 0 prints.
            let mine = json ? try Report.json(Self.rankObject(engine)) : Self.rankText(engine)
            let ranks = engine.world.gather(text: mine)
            guard engine.world.isRoot else { return }
            if json {
                var object = Self.object(engine)
                object["ranks"] = ranks.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) ?? NSNull() }
                say(try Report.json(object))
            } else {
                say((Self.lines(engine) + ranks).joined(separator: "\n"))
            }
        }

        // MARK: - JSON

        static func object(_ engine: Engine) -> [String: Any] {
            let c = engine.config
            let p = engine.parallelism
            var model: [String: Any] = [
                "model_type": c.modelType, "layers": c.numLayers, "pattern": c.pattern,
                "layer_kinds": Dictionary(uniqueKeysWithValues: LayerKind.allCases.map { ($0.name, c.count(of: $0)) }),
                "hidden_size": c.hiddenSize, "vocab_size": c.vocabSize, "norm_eps": number(c.normEps),
                "tie_word_embeddings": c.tieWordEmbeddings, "mtp_layers_ignored": c.mtpLayers,
                "weight_prefix": c.weightPrefix, "dtype": c.declaredDType ?? NSNull(),
                "quantization": quantization(engine),
            ]
            if c.has(.mamba) {
                model["mamba2"] = [
                    "heads": c.mambaHeads, "head_dim": c.mambaHeadDim, "state_size": c.ssmStateSize,
                    "groups": c.mambaGroups, "conv_kernel": c.convKernel, "chunk_size": c.chunkSize,
                    "time_step_limit": [number(c.timeStepLimit.lowerBound), number(c.timeStepLimit.upperBound)],
                ]
            }
            if c.has(.attention) {
                model["attention"] = ["heads": c.numHeads, "kv_heads": c.numKVHeads, "head_dim": c.headDim]
            }
            if c.has(.mlp) { model["mlp"] = ["width": c.ffnSize] }
            if c.has(.moe) {
                model["moe"] = [
                    "experts": c.numExperts, "experts_per_token": c.expertsPerToken, "width": c.moeFFNSize,
                    "shared_width": c.sharedExpertFFNSize, "router_groups": c.routerGroups,
                    "router_topk_groups": c.routerTopKGroups, "routed_scaling_factor": number(c.routedScalingFactor),
                    "norm_topk_prob": c.normTopKProb, "latent_size": c.moeLatentSize ?? NSNull(),
                ]
            }
            let checkpoint = engine.model.checkpoint
            return [
                "settings": Dictionary(uniqueKeysWithValues: engine.settings.described.map { ($0.key, $0.value) }),
                "effective": [
                    "processes": engine.world.size, "threads_per_process": engine.threads,
                    "blas_core": BLASRuntime.coreName, "kernels": BLASRuntime.kernelISA,
                    "compute": engine.model.compute.description,
                    "fuse_allreduce_norm": p.fusedAllReduceNorm ? "on" : "off", "fusion_reason": p.fusionReason,
                ],
                "model": model,
                "parameters": engine.model.parameterCount,
                "stop_token_ids": engine.stopTokenIds,
                "dtypes": Dictionary(
                    uniqueKeysWithValues: checkpoint.inventory().map {
                        ($0.dtype, ["elements": $0.elements, "bytes": $0.bytes])
                    }),
                "checkpoint": ["files": checkpoint.files.count, "bytes": checkpoint.fileBytes],
                "tensor_parallel": [
                    "size": engine.model.plan.tpSize,
                    "legal_sizes": ShardPlan.legalSizes(config: c, alignment: engine.model.plan.alignment),
                ],
            ]
        }

        /// How the weights are quantized: stored (the checkpoint's config) or on load, or null.
        static func quantization(_ engine: Engine) -> Any {
            if let stored = engine.config.quantization {
                return [
                    "source": "checkpoint", "method": stored.method.rawValue, "algorithm": stored.algorithm,
                    "formats": stored.formats.map(\.rawValue).sorted(), "ignore": stored.ignore,
                    "kv_cache_algorithm": stored.kvCacheAlgorithm ?? NSNull(), "block_alignment": stored.blockAlignment,
                ] as [String: Any]
            }
            guard let format = engine.settings.quantize.format else { return NSNull() }
            return ["source": "on load", "formats": [format.rawValue], "block_alignment": format.blockSize]
        }

        /// This rank's plan: the ranges it holds, as [lower, upper), its weight bytes, and each
        /// layer's weight formats and bytes held.
        static func rankObject(_ engine: Engine) -> [String: Any] {
            let plan = engine.model.plan
            let c = engine.config
            func range(_ r: Range<Int>) -> [Int] { [r.lowerBound, r.upperBound] }
            let held = engine.model.heldWeights
            var object: [String: Any] = [
                "rank": engine.world.rank, "tensor_rank": plan.rank, "tensor_size": plan.tpSize,
                "weight_bytes": engine.model.localWeightBytes, "vocab_rows": range(plan.vocabRange),
                "summary": plan.summary(for: c),
                "layers": held.layers.map { layer in
                    [
                        "index": layer.index, "kind": layer.kind.name, "weight_bytes_held": layer.bytes,
                        "formats": Dictionary(layer.matrices.map { ($0.name, $0.format.rawValue) }) { a, _ in a },
                    ] as [String: Any]
                },
                "lm_head": ["format": held.lmHead.format.rawValue, "weight_bytes_held": held.lmHead.bytes],
            ]
            if c.has(.mamba) {
                object["mamba_heads"] = range(plan.mambaHeadRange)
                object["mamba_groups"] = range(plan.mambaGroupRange)
                object["replicates_mamba_groups"] = plan.replicatesMambaGroups
            }
            if c.has(.attention) {
                object["q_heads"] = range(plan.qHeadRange)
                object["kv_heads"] = range(plan.kvHeadRange)
                object["replicates_kv_heads"] = plan.replicatesKVHeads
            }
            if c.has(.mlp) { object["mlp_width"] = range(plan.ffnRange) }
            if c.has(.moe) {
                object["experts"] = range(plan.expertRange)
                object["expert_width"] = range(plan.moeFFNRange)
                object["shared_expert_width"] = range(plan.sharedFFNRange)
            }
            return object
        }

        /// A float as JSON shows it (1e-05, not 9.99999974737875e-06); non-finite as a string.
        private static func number(_ value: Float) -> Any {
            value.isFinite ? Double("\(value)")! : (value > 0 ? "Infinity" : "-Infinity")
        }

        // MARK: - Text

        static func rankText(_ engine: Engine) -> String {
            let plan = engine.model.plan
            let held = engine.model.heldWeights
            let layers = held.layers.map { layer in
                "  layer \(layer.index) \(layer.kind.name): \(layer.formats); \(layer.bytes) bytes held"
            }
            return
                (["rank \(plan.rank) of \(plan.tpSize): weights held \(engine.model.localWeightBytes) bytes"]
                + plan.summary(for: engine.config).map { "  " + $0 } + layers
                + ["  lm_head \(held.lmHead.format); \(held.lmHead.bytes) bytes held"]).map { "  " + $0 }
                .joined(separator: "\n")
        }

        static func lines(_ engine: Engine) -> [String] {
            let c = engine.config
            let kinds = LayerKind.allCases.map { "\($0.name) \(c.count(of: $0))" }.joined(separator: ", ")
            let coreType = ProcessInfo.processInfo.environment[BLASRuntime.coreTypeVariable] ?? "unset"
            var lines =
                ["settings"]
                + engine.settings.described.map {
                    "  \($0.key.padding(toLength: 20, withPad: " ", startingAt: 0)) \($0.value)"
                }
            lines += [
                "effective",
                "  threads            \(engine.threads) per process, \(engine.world.size) process(es)",
                "  stop ids           \(engine.stopTokenIds)",
                "  blas core          \(BLASRuntime.coreName) (\(BLASRuntime.coreTypeVariable)=\(coreType))",
                "  kernels            \(BLASRuntime.kernelISA)",
                "  compute            \(engine.model.compute.description)",
                "  fuse_allreduce_norm \(engine.parallelism.fusedAllReduceNorm ? "on" : "off") "
                    + "(\(engine.parallelism.fusionReason))",
                "model",
            ]
            if c.modelType != "nemotron_h" {
                lines.append("  model type         \(c.modelType): its language model (tensors \(c.weightPrefix)*)")
            }
            lines += [
                "  layers             \(c.numLayers): \(c.pattern)",
                "  layer kinds        \(kinds)",
                "  hidden / vocab     \(c.hiddenSize) / \(c.vocabSize)",
            ]
            if c.has(.mamba) {
                lines.append(
                    "  mamba2             \(c.mambaHeads) heads × \(c.mambaHeadDim), state \(c.ssmStateSize), "
                        + "\(c.mambaGroups) groups, conv \(c.convKernel), chunk \(c.chunkSize)"
                )
            }
            if c.has(.attention) {
                lines.append("  attention          \(c.numHeads) q heads / \(c.numKVHeads) kv heads × \(c.headDim)")
            }
            if c.has(.mlp) { lines.append("  mlp                width \(c.ffnSize)") }
            if c.has(.moe) {
                lines.append(
                    "  moe                \(c.numExperts) experts, top-\(c.expertsPerToken), width \(c.moeFFNSize), "
                        + "shared \(c.sharedExpertFFNSize), "
                        + "groups \(c.routerGroups)/\(c.routerTopKGroups), scale \(c.routedScalingFactor)"
                        + (c.moeLatentSize.map { ", latent \($0)" } ?? ""))
            }
            if c.mtpLayers > 0 {
                lines.append("  mtp layers         \(c.mtpLayers) (not used for decoding, not counted)")
            }
            lines.append("  parameters         \(engine.model.parameterCount)")
            if let stored = c.quantization {
                lines.append("  quantization       \(stored.summary) (\(stored.path))")
            } else if let format = engine.settings.quantize.format {
                lines.append("  quantization       \(format) on load (each rank its own slices)")
            }
            for entry in engine.model.checkpoint.inventory() {
                lines.append(
                    "  \(entry.dtype.padding(toLength: 18, withPad: " ", startingAt: 0)) \(entry.elements) elements, "
                        + "\(entry.bytes) bytes"
                )
            }
            lines.append(
                "  checkpoint files   \(engine.model.checkpoint.files.count), \(engine.model.checkpoint.fileBytes) "
                    + "bytes"
            )
            lines.append(
                "tensor parallel       \(engine.model.plan.tpSize) rank(s); legal sizes for this model: "
                    + ShardPlan.legalSizes(config: c, alignment: engine.model.plan.alignment).map(String.init).joined(
                        separator: ", "))
            return lines
        }
    }
}
