import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective settings, layer kinds, parameter count and bytes per dtype.",
            discussion: RunConfig.flagHelp)

        @OptionGroup var options: ModelOptions

        func run() throws {
            let engine = try loadEngine(try options.settings)
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
                "  eos ids            \(c.eosTokenIds)",
                "  blas core          \(BLASRuntime.coreName) (\(BLASRuntime.coreTypeVariable)=\(coreType))",
                "  kernels            \(BLASRuntime.kernelISA)",
                "  compute            \(engine.model.compute.description)",
                "  fuse_allreduce_norm \(engine.parallelism.fusedAllReduceNorm ? "on" : "off") "
                    + "(\(engine.parallelism.fusionReason))",
                "model",
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
            let inventory = engine.model.checkpoint.inventory()
            lines.append("  parameters         \(engine.model.parameterCount)")
            for entry in inventory {
                lines.append(
                    "  \(entry.dtype.padding(toLength: 18, withPad: " ", startingAt: 0)) \(entry.elements) elements, "
                        + "\(entry.bytes) bytes"
                )
            }
            lines.append(
                "  checkpoint files   \(engine.model.checkpoint.files.count), \(engine.model.checkpoint.fileBytes) "
                    + "bytes"
            )
            let plan = engine.model.plan
            let mine =
                (["rank \(plan.rank) of \(plan.tpSize): weights held \(engine.model.localWeightBytes) bytes"]
                + plan.summary(for: c).map { "  " + $0 }).map { "  " + $0 }.joined(separator: "\n")
            let ranks = engine.world.gather(text: mine)
            lines.append(
                "tensor parallel       \(plan.tpSize) rank(s); legal sizes for this model: "
                    + ShardPlan.legalSizes(config: c).map(String.init).joined(separator: ", "))
            lines += ranks
            say(lines.joined(separator: "\n"))
        }
    }
}
