import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate text or tokens after one or more prompts (the default command).",
            discussion: RunConfig.flagHelp)

        @OptionGroup var options: ModelOptions

        @Option(
            name: .long,
            help: "Prompts, one per line: plain text, or JSON objects with \"prompt\" (text) or \"tokens\" (ids).")
        var promptFile: String?

        @Flag(name: .long, help: "Print one JSON object per prompt, one per line, in input order.")
        var json = false

        @Option(name: .long, help: "Also write F32 'step_logits' [N, V] of the first prompt to this safetensors file.")
        var logitsOutput: String?

        func run() throws {
            let settings = try options.resolved(extraPrompts: try promptFile.map(Prompt.file) ?? [])
            let engine = try loadEngine(settings)
            let inputs = try engine.prompts()
            let requests = inputs.enumerated().map {
                settings.request(prompt: $1.ids, keepLogits: $0 == 0 && logitsOutput != nil)
            }
            var view = GenerationView(engine: engine, requests: requests.count, json: json)
            let prefillBar = PrefillBar()
            let results = try engine.generate(
                requests, ignoreEOS: settings.ignoreEOS, onEvent: { view.show($0) }, prefillProgress: prefillBar.update)
            view.end()
            guard engine.world.isRoot else { return }
            if let logitsOutput, let first = results.first {
                try SafetensorsWriter.write(
                    [
                        .init(
                            name: "step_logits", shape: [first.stepLogits.count, engine.config.vocabSize],
                            values: first.stepLogits.flatMap { $0 })
                    ],
                    to: logitsOutput)
            }
            if json {
                for (input, result) in zip(inputs, results) {
                    say(try Report.json(GenerationView.record(input, result)))
                }
                return
            }
            if !view.printsAsItGoes {
                for (index, result) in results.enumerated() { say("[\(index)] " + GenerationView.text(result)) }
            }
            // The batch shares its passes: prompt tokens over the prefill time, each request's decode rate summed.
            let generated = results.reduce(0) { $0 + $1.ids.count }
            let prompted = results.reduce(0) { $0 + $1.promptTokens }
            let prefillSeconds = results.map(\.prefillSeconds).max() ?? 0
            let prefill = prefillSeconds > 0 ? Double(prompted) / prefillSeconds : 0
            Report.note(
                "\(results.count) prompt(s), \(generated) tokens generated; finish: "
                    + "\(results.map(\.finishReason.rawValue).joined(separator: ", ")); "
                    + "prefill \(Report.rate(prefill)) tokens/s, decode "
                    + "\(Report.rate(results.reduce(0) { $0 + $1.decodeTokensPerSecond })) tokens/s"
            )
        }
    }

    struct Logits: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the logits of one prefill over the tokens.",
            discussion: RunConfig.flagHelp)

        @OptionGroup var options: ModelOptions

        @Option(name: .long, help: "Output safetensors file; holds F32 'logits' [T, V].")
        var output: String

        func run() throws {
            let engine = try loadEngine(try options.settings)
            let tokens = try options.settings.tokens ?? []
            let logits = try engine.makeScheduler().prefillLogits(tokens)
            guard engine.world.isRoot else { return }
            try SafetensorsWriter.write(
                [.init(name: "logits", shape: [tokens.count, engine.config.vocabSize], values: logits)], to: output)
        }
    }
}

/// How `generate` shows scheduler events on rank 0: one prompt streams its text as it is
/// released; a batch prints each request when it finishes, with a progress line on a
/// terminal; `--json` and attention data parallelism (where rank 0 sees only its own
/// requests as they run) print at the end.
struct GenerationView {
    let streams: Bool
    let printsAsItGoes: Bool
    let total: Int
    /// Tokens come with text when the checkpoint has a tokenizer; ids are printed otherwise.
    let hasText: Bool
    private var finishedCount = 0

    init(engine: Engine, requests: Int, json: Bool) {
        let root = engine.world.isRoot
        let local = !engine.parallelism.splitsRequests
        streams = root && local && !json && requests == 1
        printsAsItGoes = local && !json
        total = requests
        hasText = engine.tokenizer != nil
    }

    mutating func show(_ event: GenerationEvent) {
        switch event {
        case .token(_, let id, let text):
            guard streams else { return }
            print(hasText ? text : "\(id) ", terminator: "")
            fflush(nil)
        case .finished(let request, let result):
            finishedCount += 1
            guard printsAsItGoes && !streams && MPICommunicator.world.isRoot else { return }
            ProgressBar(label: "").clear()
            print("[\(request)] " + Self.text(result))
            fflush(nil)
            ProgressBar(label: "generating").update(finishedCount, of: total)
        }
    }

    func end() {
        if streams {
            print("")
            fflush(nil)
        }
        if total > 1 { ProgressBar(label: "").clear() }
    }

    /// A result's text, or its ids when the checkpoint has no tokenizer.
    static func text(_ result: Generation) -> String {
        result.text ?? result.ids.map(String.init).joined(separator: " ")
    }

    static func record(_ input: (text: String?, ids: [Int]), _ result: Generation) -> [String: Any] {
        [
            "prompt": input.text ?? NSNull(), "text": result.text ?? NSNull(), "prompt_ids": input.ids,
            "generated_ids": result.ids, "finish_reason": result.finishReason.rawValue,
            "prompt_tokens": input.ids.count,
            "generated_tokens": result.ids.count, "prefill_tokens_per_second": result.prefillTokensPerSecond,
            "decode_tokens_per_second": result.decodeTokensPerSecond,
        ]
    }
}

/// Prompt tokens read, as a bar on a terminal while prompts are read (a long prompt takes
/// a while before the first token); cleared once every prompt is read.
final class PrefillBar {
    private let bar = ProgressBar(label: "prefill")
    private var shown = false

    func update(_ done: Int, _ total: Int) {
        if done < total {
            bar.update(done, of: total)
            shown = true
        } else if shown {
            bar.clear()
            shown = false
        }
    }
}
