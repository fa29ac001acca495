import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate text or tokens after one or more prompts (the default command).")

        @OptionGroup var model: ModelOptions
        @OptionGroup var prompt: TokenOptions
        @OptionGroup var sampling: SamplingOptions

        @Option(name: .customLong("prompt"), help: "Prompt text; repeat it to generate for several prompts together.")
        var texts: [String] = []

        @Option(name: .long, help: "Prompts, one per line: plain text, or JSON objects with \"prompt\" (text) or \"tokens\" (ids).")
        var promptFile: String?

        @Option(name: .long, help: "Stop when the generated text contains this string (repeatable); it is not printed.")
        var stop: [String] = []

        @Flag(name: .long, help: "Wrap the prompt in the checkpoint's chat template.")
        var chat = false

        @Flag(name: .long, help: "Print one JSON object per prompt, one per line, in input order.")
        var json = false

        @Option(name: .long, help: "Also write F32 'step_logits' [N, V] of the first prompt to this safetensors file.")
        var logitsOutput: String?

        func run() throws {
            var overrides = RunConfig()
            var prompts = texts.map(Prompt.text) + (try promptFile.map(Prompt.file) ?? [])
            if let ids = try prompt.parsed() { prompts.append(.tokens(ids)) }
            if !prompts.isEmpty { overrides.prompts = prompts }
            if !stop.isEmpty { overrides.stop = stop }
            sampling.apply(to: &overrides)
            let settings = try model.settings(overrides)
            let engine = try loadEngine(settings)
            let tokenizer = try engine.tokenizer()
            if chat { try ChatTemplate.refuse(tokenizer, model: settings.model ?? "") }
            let inputs = try engine.prompts(tokenizer: tokenizer)
            let stops = settings.stop ?? []
            if !stops.isEmpty && tokenizer == nil {
                throw NemotronError.invalidArgument(name: "stop", value: "\(stops)", expected: "a checkpoint with tokenizer.json (stop strings match text)")
            }
            let requests = inputs.map { Request(prompt: $0.ids, maxNewTokens: settings.maxNewTokens ?? 32, sampling: settings.sampling) }
            // Under attention data parallelism rank 0 sees only its own requests as they run, so
            // results print at the end, in input order.
            let dataParallel = engine.model.plan.attentionDataParallel
            var output = Output(tokenizer: tokenizer, stops: stops,
                                streams: !json && inputs.count == 1 && MPICommunicator.world.isRoot && !dataParallel, total: inputs.count)
            let results = try engine.generator.generate(
                requests, stopIds: engine.stopIds, keepLogits: logitsOutput != nil,
                shouldStop: { _, ids in output.containsStop(ids) },
                onToken: { request, id in output.token(id, request: request) },
                onFinish: { request, result in output.finished(request, result, batch: !json && inputs.count > 1 && !dataParallel) })
            output.end()
            guard MPICommunicator.world.isRoot else { return }
            if let logitsOutput, let first = results.first {
                try SafetensorsWriter.write(
                    [.init(name: "step_logits", shape: [first.stepLogits.count, engine.config.vocabSize], values: first.stepLogits.flatMap { $0 })],
                    to: logitsOutput)
            }
            if json {
                for (input, result) in zip(inputs, results) { say(try Report.json(output.record(input, result))) }
            } else {
                if dataParallel {
                    for (index, result) in results.enumerated() {
                        say("[\(index)] " + (output.text(result.ids) ?? result.ids.map(String.init).joined(separator: " ")))
                    }
                }
                // The batch shares its passes: prompt tokens over the one prefill, each request's decode rate summed.
                let generated = results.reduce(0) { $0 + $1.ids.count }, prompted = results.reduce(0) { $0 + $1.promptTokens }
                let prefill = results.first.map { $0.prefillSeconds > 0 ? Double(prompted) / $0.prefillSeconds : 0 } ?? 0
                Report.note("\(results.count) prompt(s), \(generated) tokens generated; finish: \(results.map(\.finishReason.rawValue).joined(separator: ", ")); "
                    + "prefill \(Report.rate(prefill)) tokens/s, decode \(Report.rate(results.reduce(0) { $0 + $1.decodeTokensPerSecond })) tokens/s")
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

/// How `generate` shows its results: one prompt streams its text as it is generated (held
/// back while it could still turn into a stop string); a batch prints each request when it is
/// done, with a progress line on a terminal; `--json` prints records at the end.
struct Output {
    let tokenizer: Tokenizer?
    let stops: [String]
    let streams: Bool
    let total: Int
    private var decoder: StreamingDecoder?
    private var held = ""
    private var finishedCount = 0

    init(tokenizer: Tokenizer?, stops: [String], streams: Bool, total: Int) {
        self.tokenizer = tokenizer
        self.stops = stops
        self.streams = streams
        self.total = total
        decoder = tokenizer.map { StreamingDecoder(tokenizer: $0) }
    }

    func containsStop(_ ids: [Int]) -> Bool {
        guard let tokenizer, !stops.isEmpty else { return false }
        let text = tokenizer.decode(ids)
        return stops.contains { text.contains($0) }
    }

    /// The generated text, cut before the first stop string.
    func text(_ ids: [Int]) -> String? {
        guard let tokenizer else { return nil }
        let text = tokenizer.decode(ids)
        let cut = stops.compactMap { text.range(of: $0)?.lowerBound }.min()
        return cut.map { String(text[..<$0]) } ?? text
    }

    mutating func token(_ id: Int, request: Int) {
        guard streams else { return }
        guard decoder != nil else {
            print(id, terminator: " ")
            fflush(nil)
            return
        }
        held += decoder!.append(id)
        // Keep back what could be the start of a stop string.
        let keep = stops.map { $0.count - 1 }.max() ?? 0
        if let stop = stops.compactMap({ held.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            print(held[..<stop.lowerBound], terminator: "")
            held = ""
            decoder = nil
        } else if held.count > keep {
            let cut = held.index(held.endIndex, offsetBy: -keep)
            print(held[..<cut], terminator: "")
            held = String(held[cut...])
        }
        fflush(nil)
    }

    mutating func finished(_ request: Int, _ result: Generation, batch: Bool) {
        finishedCount += 1
        if batch && MPICommunicator.world.isRoot {
            ProgressBar(label: "").clear()
            print("[\(request)] " + (text(result.ids) ?? result.ids.map(String.init).joined(separator: " ")))
            fflush(nil)
        }
        if batch { ProgressBar(label: "generating").update(finishedCount, of: total) }
    }

    mutating func end() {
        if streams {
            if var decoder { held += decoder.finish() }
            print(held, terminator: held.isEmpty ? "\n" : "\n")
        }
        if total > 1 { ProgressBar(label: "").clear() }
    }

    func record(_ input: (text: String?, ids: [Int]), _ result: Generation) -> [String: Any] {
        [
            "prompt": input.text ?? NSNull(), "text": text(result.ids) ?? NSNull(), "prompt_ids": input.ids,
            "generated_ids": result.ids, "finish_reason": result.finishReason.rawValue, "prompt_tokens": input.ids.count,
            "generated_tokens": result.ids.count, "prefill_tokens_per_second": result.prefillTokensPerSecond,
            "decode_tokens_per_second": result.decodeTokensPerSecond,
        ]
    }
}

/// `--chat`: Nemotron-H checkpoints ship their chat format as a Jinja template in
/// tokenizer_config.json. nemotron-run has no Jinja engine and will not approximate one.
enum ChatTemplate {
    static func refuse(_ tokenizer: Tokenizer?, model: String) throws {
        guard let tokenizer, tokenizer.chatTemplate != nil else {
            throw NemotronError.configKeyMissing(path: model + "/tokenizer_config.json", key: "chat_template")
        }
        throw NemotronError.invalidArgument(name: "--chat", value: "(Jinja chat_template in \(model)/tokenizer_config.json)",
            expected: "a prompt formatted by you: nemotron-run cannot render Jinja chat templates faithfully and does not approximate them; "
                + "pass the formatted conversation with --prompt")
    }
}
