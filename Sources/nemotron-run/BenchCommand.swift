import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure prefill and decode speed on a random prompt, and peak memory.",
            discussion: RunConfig.flagHelp)

        @OptionGroup var options: ModelOptions

        @Option(name: .long, help: "Prompt length for the prefill measurement.")
        var promptTokens = 512

        @Option(name: .long, help: "Tokens to decode (EOS ignored); the first step is a warm-up.")
        var newTokens = 128

        @Option(name: .long, help: "Timed runs after the warm-up; the median is reported.")
        var repetitions = 3

        @Flag(name: .long, help: "Print one JSON object.")
        var json = false

        @Flag(name: .long, help: "Run fused and unfused AllReduce + norm in this one invocation and print the ratio.")
        var compareFusion = false

        @Flag(
            name: .customLong("compare-amx"),
            help: "Prefill with AMX tiles and with the AVX512-BF16 GEMM in this one invocation and print the ratio.")
        var compareAMX = false

        @Option(
            name: .long,
            help: ArgumentHelp(
                "Generate for a batch of this many prompts (lengths from half to all of --prompt-tokens) and report "
                    + "total tokens/s; with --attention-dp, also the same batch in tensor-parallel mode.")
        )
        var prompts: Int?

        func validate() throws {
            for (name, value) in [("--prompt-tokens", promptTokens), ("--new-tokens", newTokens)] where value < 1 {
                throw NemotronError.invalidArgument(name: name, value: "\(value)", expected: "an integer >= 1")
            }
            guard repetitions >= 1 else {
                throw NemotronError.invalidArgument(
                    name: "--repetitions", value: "\(repetitions)", expected: "an integer >= 1")
            }
        }

        func run() throws {
            let loadClock = Date()
            let engine = try loadEngine(try options.settings)
            let loadSeconds = Date().timeIntervalSince(loadClock)
            // Refused before the prompt is built: a length memory cannot hold is not allocated.
            try ContextLimit(model: engine.model, prefillChunk: engine.settings.prefillChunk).check(
                promptTokens: promptTokens)
            // A fixed pseudo-random prompt, the same on every rank and every run.
            let prompt = (0..<promptTokens).map { (7919 &+ $0 &* 104_729) % engine.config.vocabSize }
            if compareFusion { return try compare(engine, prompt: prompt) }
            if compareAMX { return try compareTiles(engine, prompt: prompt) }
            if let prompts { return try batch(engine, count: prompts) }
            // The warm-up pass pages the weights in and touches every buffer once; its time is
            // reported as load time, apart from the timed runs.
            let warmClock = Date()
            _ = try engine.generate([Request(prompt: prompt, maxNewTokens: min(newTokens, 4))], ignoreEOS: true)
            let warmupSeconds = Date().timeIntervalSince(warmClock)
            let runs = try (0..<repetitions).map { _ in
                try engine.generate([Request(prompt: prompt, maxNewTokens: newTokens)], ignoreEOS: true).first
                    ?? Generation(promptTokens: prompt.count)
            }
            var result = runs[0]
            result.prefillSeconds = median(runs.map(\.prefillSeconds))
            result.decodeSeconds =
                median(runs.map { $0.decodeSeconds / Double(max(1, $0.timedDecodeSteps)) })
                * Double(result.timedDecodeSteps)
            let weights = engine.model.checkpoint.fileBytes
            let peaks = engine.world.gather(text: "\(ResourceUsage.peakResidentBytes)").compactMap { Int($0) }
            let peak = peaks.max() ?? ResourceUsage.peakResidentBytes
            let readBandwidth = MemoryBandwidth.read(engine.model.checkpoint, pool: engine.workspace.pool)
            let stream = result.decodeTokensPerSecond * engine.model.bytesReadPerToken
            let fields: [String: Any] = [
                "prompt_tokens": promptTokens, "new_tokens": result.ids.count, "threads": engine.threads,
                "repetitions": repetitions, "load_seconds": loadSeconds, "warmup_seconds": warmupSeconds,
                "prefill_tokens_per_second_runs": runs.map(\.prefillTokensPerSecond),
                "decode_tokens_per_second_runs": runs.map(\.decodeTokensPerSecond),
                "processes": engine.world.size, "blas_core": BLASRuntime.coreName,
                "compute_dtype": engine.model.compute.description, "weights": engine.weightsDescription,
                "weight_bytes_held": engine.model.localWeightBytes,
                "prefill_tokens_per_second": result.prefillTokensPerSecond,
                "decode_tokens_per_second": result.decodeTokensPerSecond,
                "peak_resident_bytes": peak, "peak_resident_bytes_per_rank": peaks, "checkpoint_bytes": weights,
                "peak_over_checkpoint": Double(peak) / Double(weights),
                "decode_weight_stream_gb_per_second": stream / 1e9,
                "bytes_read_per_token": engine.model.bytesReadPerToken,
                "read_bandwidth_gb_per_second": readBandwidth / 1e9,
                "decode_stream_over_read_bandwidth": stream / readBandwidth,
            ]
            if json {
                say(try Report.json(fields))
                return
            }
            let perRank =
                peaks.count > 1
                ? " on the largest rank (per rank: \(peaks.map(Report.gigabytes).joined(separator: ", ")))" : ""
            say(
                """
                model            \(engine.settings.model)
                threads          \(engine.threads) per process, \(engine.world.size) process(es), BLAS core \
                \(BLASRuntime.coreName), compute \(engine.model.compute.description)
                load             \(String(format: "%.2f", loadSeconds)) s to load, \
                \(String(format: "%.2f", warmupSeconds)) s warm-up pass (page-in, first touch); \
                then the median of \(repetitions) timed run(s)
                prefill          \(promptTokens) tokens: \(Report.rate(result.prefillTokensPerSecond)) tokens/s
                decode           \(result.timedDecodeSteps) timed steps: \(Report.rate(result.decodeTokensPerSecond)) \
                tokens/s \
                (weights streamed at \(String(format: "%.1f", stream / 1e9)) GB/s: \
                \(String(format: "%.2f", engine.model.bytesReadPerToken / 1e9)) GB read per token)
                read bandwidth   \(String(format: "%.1f", readBandwidth / 1e9)) GB/s measured now with \
                \(engine.threads) thread(s); \
                decode streams at \(String(format: "%.0f", 100 * stream / readBandwidth))% of it
                weights          \(engine.weightsDescription)
                fusion           \(engine.parallelismDescription)
                peak memory      \(Report.gigabytes(peak)) resident\(perRank), \
                \(String(format: "%.2f", Double(peak) / Double(weights)))× the checkpoint \
                (\(Report.gigabytes(weights)))
                """)
        }

        /// The middle value (the mean of the two middle ones for an even count).
        private func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            let middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }

        /// Unfused, fused, unfused, fused on the same prompt in this process; reports the better
        /// of each pair and the fused / unfused ratio.
        private func compare(_ engine: Engine, prompt: [Int]) throws {
            guard engine.world.size > 1, engine.parallelism.mode == .tensorParallel else {
                throw NemotronError.invalidArgument(
                    name: "--compare-fusion", value: "with \(engine.world.size) process(es)",
                    expected: "a tensor-parallel run (mpirun -np 2 or more): fusion needs a reduction")
            }
            var best: [Bool: Generation] = [:]
            var reusedPerStep: [Bool: Double] = [:]
            for fused in [false, true, false, true] {
                engine.model.parallelism.fusedAllReduceNorm = fused
                let reusedBefore = engine.workspace.reusedQuantizedRows
                let result =
                    try engine.generate([Request(prompt: prompt, maxNewTokens: newTokens)], ignoreEOS: true).first
                    ?? Generation(promptTokens: prompt.count)
                reusedPerStep[fused] =
                    Double(engine.workspace.reusedQuantizedRows - reusedBefore) / Double(max(1, result.ids.count))
                if result.decodeTokensPerSecond > best[fused]?.decodeTokensPerSecond ?? 0 { best[fused] = result }
            }
            // What the fused boundary does besides the reduction, and what its int8 packages saved.
            let quantizes = engine.model.compute.usesInt8Activations
            let epilogue =
                "residual add + RMSNorm"
                + (quantizes
                    ? " + int8 quantization of the normed decode rows, read by "
                        + String(format: "%.1f", reusedPerStep[true] ?? 0) + " int8 products per token "
                        + "(unfused: each product quantizes its own input)"
                    : " (compute \(engine.model.compute.description): no int8 activations to emit)")
            let (fused, unfused) = (best[true]!, best[false]!)
            let decodeRatio = fused.decodeTokensPerSecond / unfused.decodeTokensPerSecond
            let prefillRatio = fused.prefillTokensPerSecond / unfused.prefillTokensPerSecond
            if json {
                say(
                    try Report.json([
                        "processes": engine.world.size, "strategy": engine.settings.allReduceStrategy.rawValue,
                        "fused_decode_tokens_per_second": fused.decodeTokensPerSecond,
                        "unfused_decode_tokens_per_second": unfused.decodeTokensPerSecond,
                        "fused_prefill_tokens_per_second": fused.prefillTokensPerSecond,
                        "unfused_prefill_tokens_per_second": unfused.prefillTokensPerSecond,
                        "decode_ratio": decodeRatio, "prefill_ratio": prefillRatio, "epilogue": epilogue,
                        "int8_products_reusing_packages_per_token": reusedPerStep[true] ?? 0,
                    ]))
                return
            }
            say(
                """
                compare-fusion   \(engine.world.size) ranks, allreduce_strategy \
                \(engine.settings.allReduceStrategy.rawValue), best of 2 runs each
                epilogue         \(epilogue)
                decode           fused \(Report.rate(fused.decodeTokensPerSecond)) vs unfused \
                \(Report.rate(unfused.decodeTokensPerSecond)) tokens/s: \
                \(String(format: "%.3f", decodeRatio))×
                prefill          fused \(Report.rate(fused.prefillTokensPerSecond)) vs unfused \
                \(Report.rate(unfused.prefillTokensPerSecond)) tokens/s: \
                \(String(format: "%.3f", prefillRatio))×
                """)
        }

        /// Prefill with the AVX512-BF16 GEMM, AMX tiles, and both again on the same prompt in this
        /// process; reports the better of each pair and the AMX / AVX512-BF16 ratio.
        private func compareTiles(_ engine: Engine, prompt: [Int]) throws {
            guard engine.model.compute.usesAMX else {
                throw NemotronError.invalidArgument(
                    name: "--compare-amx", value: "compute \(engine.model.compute.description)",
                    expected: "bf16 GEMMs on a CPU with AMX tiles (bf16 weights, compute_dtype auto or bf16)")
            }
            var best: [Bool: Double] = [:]
            for amx in [false, true, false, true] {
                engine.model.compute.allowsAMX = amx
                let result =
                    try engine.generate([Request(prompt: prompt, maxNewTokens: 1)], ignoreEOS: true).first
                    ?? Generation(promptTokens: prompt.count)
                best[amx] = max(best[amx] ?? 0, result.prefillTokensPerSecond)
            }
            // The two paths differ only in summation order: the prompt's mean log-likelihood
            // (every position's logits) must agree closely.
            let evaluator = PerplexityEvaluator(model: engine.model, workspace: engine.workspace)
            var nll: [Bool: Double] = [:]
            for amx in [false, true] {
                engine.model.compute.allowsAMX = amx
                nll[amx] = evaluator.score(prompt, context: prompt.count, stride: prompt.count).meanNLL
            }
            let (tiles, vectors) = (best[true]!, best[false]!)
            let (nllTiles, nllVectors) = (nll[true]!, nll[false]!)
            if json {
                say(
                    try Report.json([
                        "processes": engine.world.size, "threads": engine.threads, "prompt_tokens": prompt.count,
                        "amx_prefill_tokens_per_second": tiles, "avx512_bf16_prefill_tokens_per_second": vectors,
                        "prefill_ratio": tiles / vectors, "amx_mean_nll": nllTiles, "avx512_bf16_mean_nll": nllVectors,
                    ]))
                return
            }
            say(
                """
                compare-amx      \(engine.world.size) process(es) × \(engine.threads) threads, \(prompt.count)-token \
                prompt, best of 2 runs each
                prefill          AMX tiles \(Report.rate(tiles)) vs AVX512-BF16 \(Report.rate(vectors)) tokens/s: \
                \(String(format: "%.2f", tiles / vectors))×
                agreement        mean negative log-likelihood of the prompt: AMX \(String(format: "%.6f", nllTiles)) \
                vs AVX512-BF16 \(String(format: "%.6f", nllVectors)) (|Δ| \
                \(String(format: "%.1e", abs(nllTiles - nllVectors))); same bf16 products, another summation order)
                """)
        }

        /// Total throughput of a batch; under attention data parallelism also the same batch
        /// with a tensor-parallel engine loaded in this invocation.
        private func batch(_ engine: Engine, count: Int) throws {
            let V = engine.config.vocabSize
            let requests = (0..<count).map { i in
                let length = max(1, promptTokens / 2 + i * promptTokens / max(1, 2 * count))
                return Request(
                    prompt: (0..<length).map { (7919 &+ (i &* 31 &+ $0) &* 104_729) % V }, maxNewTokens: newTokens)
            }
            var lines: [String] = []
            func measure(_ engine: Engine) throws -> Double {
                let start = Date()
                let results = try engine.generate(requests, ignoreEOS: true)
                let wall = Date().timeIntervalSince(start)
                let generated = results.reduce(0) { $0 + $1.ids.count }
                let prefill = results.map(\.prefillSeconds).max() ?? 0
                let decode = Double(results.reduce(0) { $0 + max(0, $1.ids.count - 1) }) / max(wall - prefill, 1e-9)
                let mode = engine.parallelism.mode.rawValue
                lines.append(
                    "\(mode.padding(toLength: 24, withPad: " ", startingAt: 0)) \(count) prompts × \(newTokens) "
                        + "tokens on "
                        + "\(engine.world.size) rank(s): \(String(format: "%.2f", wall)) s, "
                        + "\(Report.rate(Double(generated) / wall)) tokens/s overall, "
                        + "decode \(Report.rate(decode)) tokens/s in total")
                return decode
            }
            let first = try measure(engine)
            if engine.parallelism.mode == .attentionDataParallel {
                var settings = engine.settings
                settings.enableAttentionDP = false
                let tensorParallel = try measure(try loadEngine(settings))
                lines.append(
                    String(
                        format: "attention-DP / tensor-parallel total decode throughput: %.2f×",
                        first / tensorParallel)
                )
            }
            say(lines.joined(separator: "\n"))
        }
    }
}
