import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate tokens after a prompt (the default command).")

        @OptionGroup var model: ModelOptions
        @OptionGroup var prompt: TokenOptions
        @OptionGroup var sampling: SamplingOptions

        @Flag(name: .long, help: "Print one JSON object with the prompt, generated ids and timings.")
        var json = false

        @Option(name: .long, help: "Also write F32 'step_logits' [N, V] to this safetensors file.")
        var logitsOutput: String?

        func run() throws {
            var overrides = RunConfig()
            overrides.tokens = try prompt.parsed()
            sampling.apply(to: &overrides)
            let settings = try model.settings(overrides)
            let engine = try loadEngine(settings)
            let tokens = try engine.promptTokens()
            let streams = !json && MPICommunicator.world.isRoot
            let result = try engine.generator.generate(
                prompt: tokens, maxNewTokens: settings.maxNewTokens ?? 32, sampling: settings.sampling,
                stopIds: engine.stopIds, keepLogits: logitsOutput != nil
            ) { id in
                if streams {
                    print(id, terminator: " ")
                    fflush(nil)
                }
            }
            guard MPICommunicator.world.isRoot else { return }
            if let logitsOutput {
                let V = engine.config.vocabSize
                try SafetensorsWriter.write(
                    [.init(name: "step_logits", shape: [result.stepLogits.count, V], values: result.stepLogits.flatMap { $0 })],
                    to: logitsOutput)
            }
            if json {
                say(try Report.json([
                    "prompt_ids": tokens, "generated_ids": result.ids, "finish_reason": result.finishReason.rawValue,
                    "prompt_tokens": tokens.count, "generated_tokens": result.ids.count,
                    "prefill_tokens_per_second": result.prefillTokensPerSecond,
                    "decode_tokens_per_second": result.decodeTokensPerSecond,
                ]))
            } else {
                print("")
                Report.note("finish: \(result.finishReason.rawValue); prompt \(tokens.count) tokens at "
                    + "\(Report.rate(result.prefillTokensPerSecond)) tokens/s; \(result.ids.count) generated at "
                    + "\(Report.rate(result.decodeTokensPerSecond)) tokens/s")
            }
        }
    }

    struct Logits: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the logits of one prefill over the tokens.")

        @OptionGroup var model: ModelOptions
        @OptionGroup var prompt: TokenOptions

        @Option(name: .long, help: "Output safetensors file; holds F32 'logits' [T, V].")
        var output: String

        func run() throws {
            var overrides = RunConfig()
            overrides.tokens = try prompt.parsed()
            let engine = try loadEngine(try model.settings(overrides))
            let tokens = try engine.promptTokens()
            let logits = try engine.generator.prefillLogits(tokens)
            guard MPICommunicator.world.isRoot else { return }
            try SafetensorsWriter.write([.init(name: "logits", shape: [tokens.count, engine.config.vocabSize], values: logits)], to: output)
        }
    }
}

/// Output helpers shared by the commands.
enum Report {
    static func json(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// A status line on stderr (rank 0 only), keeping stdout for results.
    static func note(_ text: String) {
        guard MPICommunicator.world.isRoot else { return }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func rate(_ value: Double) -> String { String(format: "%.1f", value) }
    static func gigabytes(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }
}
