import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Perplexity: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Perplexity of a text file by fixed-length windows (Hugging Face's protocol).",
            discussion: RunConfig.flagHelp)

        @OptionGroup var options: ModelOptions

        @Option(name: .long, help: "The text to score; tokenized as tokenizer(text) does, special tokens included.")
        var textFile: String

        @Option(name: .long, help: "Tokens per window.")
        var context = 512

        @Option(name: .long, help: "Tokens between window starts (default: context / 2).")
        var stride: Int?

        @Flag(name: .long, help: "Print one JSON object.")
        var json = false

        func validate() throws {
            guard context > 1 else {
                throw NemotronError.invalidArgument(name: "--context", value: "\(context)", expected: "an integer > 1")
            }
            if let stride, stride < 1 || stride > context {
                throw NemotronError.invalidArgument(
                    name: "--stride", value: "\(stride)", expected: "an integer in 1...\(context) (at most --context)")
            }
        }

        func run() throws {
            let settings = try options.settings
            guard let data = FileManager.default.contents(atPath: textFile) else {
                throw NemotronError.fileMissing(path: textFile, what: "a UTF-8 text file to score")
            }
            let text = String(decoding: data, as: UTF8.self)
            guard !text.isEmpty else {
                throw NemotronError.invalidArgument(
                    name: "--text-file", value: textFile, expected: "a non-empty text file")
            }
            let engine = try loadEngine(settings)
            guard let tokenizer = engine.tokenizer else {
                throw NemotronError.fileMissing(
                    path: URL(fileURLWithPath: settings.model).appendingPathComponent("tokenizer.json").path,
                    what: "the checkpoint's tokenizer, needed to score text")
            }
            let tokens = tokenizer.encode(text, addSpecialTokens: true)
            guard tokens.count >= 2 else {
                throw NemotronError.invalidArgument(
                    name: "--text-file", value: "\(textFile) (\(tokens.count) token)",
                    expected: "a text of at least 2 tokens")
            }
            // Ids the model has no row for would be read past its embedding (a tokenizer of
            // another checkpoint).
            let vocabulary = 0..<engine.config.vocabSize
            if let index = tokens.firstIndex(where: { !vocabulary.contains($0) }) {
                throw NemotronError.invalidTokens(
                    reason: "the text's token \(index) has id \(tokens[index]), outside the model's vocabulary "
                        + "0..<\(vocabulary.upperBound) (vocab_size in config.json): tokenizer.json does not belong "
                        + "to this checkpoint")
            }
            // A window is one forward pass: its KV cache and [window, window] attention scores.
            let window = min(context, tokens.count)
            try ContextLimit(model: engine.model, prefillChunk: window).check(promptTokens: window)
            let bar = ProgressBar(label: "scoring")
            let evaluator = PerplexityEvaluator(model: engine.model, workspace: engine.workspace)
            let score = evaluator.score(tokens, context: context, stride: stride ?? max(1, context / 2)) {
                bar.update($0, of: $1)
            }
            bar.clear()
            // NaN weights give a NaN score: an error on every rank, not a number printed.
            try engine.world.agreeing {
                if engine.world.isRoot && !score.meanNLL.isFinite {
                    throw NemotronError.nonFiniteLogits(prompt: -1, token: 0)
                }
            }
            let peaks = engine.world.gather(text: "\(ResourceUsage.peakResidentBytes)").compactMap { Int($0) }
            // The score is complete on rank 0 only.
            guard engine.world.isRoot else { return }
            if json {
                say(
                    try Report.json([
                        "tokens": tokens.count, "tokens_scored": score.tokensScored, "mean_nll": score.meanNLL,
                        "perplexity": score.perplexity, "tokens_per_second": score.tokensPerSecond,
                        "peak_resident_bytes_per_rank": peaks, "context": context,
                        "stride": stride ?? max(1, context / 2),
                    ]))
                return
            }
            say(
                """
                tokens scored    \(score.tokensScored) of \(tokens.count)
                mean NLL         \(String(format: "%.6f", score.meanNLL)) nats
                perplexity       \(String(format: "%.4f", score.perplexity))
                speed            \(Report.rate(score.tokensPerSecond)) tokens/s
                """)
        }
    }
}
