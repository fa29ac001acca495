import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a quantized copy of a bf16, f16 or f32 checkpoint, so the next load needs no work.",
            discussion: """
                Every linear weight of the mixers and the LM head is quantized (the embedding, norms, conv filters \
                and the router are copied as they are). fp8 and nvfp4 are written in NVIDIA ModelOpt's form \
                (quant_method modelopt), int8 and int4 in nemotron-run's (quant_method nemotron-run, blocks of 32); \
                docs/architecture.md, "Weight formats", gives the layouts. One process.
                """)

        @Option(name: .long, help: "The checkpoint directory to read.")
        var model: String

        @Option(name: .long, help: "The directory to write (created if needed).")
        var out: String

        @Option(name: .long, help: "int8, int4, fp8 or nvfp4.")
        var format: String

        @Option(
            name: .long,
            help: ArgumentHelp(
                "A module to keep in its own dtype (repeatable): a name such as lm_head, or a wildcard such as "
                    + "'*.mixer.o_proj'; written to the config's ignore list."))
        var ignore: [String] = []

        func validate() throws {
            guard let chosen = WeightFormat(rawValue: format), !chosen.isPlain else {
                throw NemotronError.invalidArgument(
                    name: "--format", value: "'\(format)'", expected: "one of int8, int4, fp8, nvfp4")
            }
            let input = URL(fileURLWithPath: model).standardized
            let output = URL(fileURLWithPath: out).standardized
            if input == output {
                throw NemotronError.invalidArgument(
                    name: "--out", value: out, expected: "a directory other than the input checkpoint")
            }
        }

        func run() throws {
            let world = MPICommunicator.world
            guard world.size == 1 else {
                throw NemotronError.invalidArgument(
                    name: "quantize", value: "under \(world.size) processes", expected: "one process (no mpirun)")
            }
            let bar = ProgressBar(label: "quantizing \(URL(fileURLWithPath: model).lastPathComponent)")
            let start = Date()
            let summary = try CheckpointQuantizer.quantize(
                from: URL(fileURLWithPath: model), to: URL(fileURLWithPath: out),
                format: WeightFormat(rawValue: format)!,
                ignore: ignore
            ) { bar.update($0, of: $1) }
            bar.clear()
            say(
                "\(out): \(summary.quantized) linear weights quantized to \(format), \(summary.copied) tensors copied; "
                    + "\(Report.gigabytes(summary.inputBytes)) → \(Report.gigabytes(summary.outputBytes)) in "
                    + String(format: "%.1f s", Date().timeIntervalSince(start)))
        }
    }
}
