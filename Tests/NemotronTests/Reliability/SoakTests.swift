import Foundation
import Testing

@testable import Nemotron

/// The soak (`scripts/soak.sh`): NEMOTRON_SOAK generations in this one process, with prompts of
/// varied lengths, batches of 1–3, greedy and sampled decoding, stop strings and chat-rendered
/// prompts, the peak resident memory recorded per 100. Without leaks or unbounded caches the
/// last window's peak stays within 5 % of the first's. Off unless NEMOTRON_SOAK is set.
@Suite("Reliability: soak", .enabled(if: ProcessInfo.processInfo.environment["NEMOTRON_SOAK"] != nil))
struct SoakTests {
    @Test("peak memory of the last 100 generations is within 5 % of the first 100")
    func soak() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = Int(environment["NEMOTRON_SOAK"] ?? "") ?? 1000
        let repository = ProcessSuites.BadInputCommandTests.repository
        let model = environment["NEMOTRON_SOAK_MODEL"] ?? repository.appendingPathComponent("models/demo-dense").path
        var settings = RunConfig()
        settings.model = model
        settings.threads = 1
        let engine = try Engine(settings: settings, world: SingleProcess())
        let tokenizer = try #require(engine.tokenizer)
        let template = try? ChatTemplate.load(directory: URL(fileURLWithPath: model))
        let corpus = Array(
            (try? String(contentsOfFile: model + "/validation.txt", encoding: .utf8))
                ?? String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 200))
        var tokens = 0
        func request(_ i: Int, _ k: Int) throws -> Request {
            let start: Int = (i * 7919 + k * 104_729) % max(1, corpus.count - 400)
            let length: Int = 20 + (i * 31 + k * 17) % 380
            let text = String(corpus[start..<start + length])
            let ids: [Int]
            if let template, i % 4 == 3 {
                let message: JinjaValue = .dict([("role", "user"), ("content", .string(text))])
                let rendered = try template.render(messages: [message], addGenerationPrompt: true)
                ids = tokenizer.encode(rendered, addSpecialTokens: false)
            } else {
                ids = tokenizer.encodePrompt(text)
            }
            let sampling =
                i % 2 == 0
                ? SamplingParameters() : SamplingParameters(temperature: 0.8, topP: 0.95, seed: UInt64(i))
            return Request(
                prompt: ids, maxNewTokens: 1 + (i * 13 + k) % 24, sampling: sampling, stop: i % 5 == 0 ? ["\n"] : [])
        }
        let soak = MemorySoak(count: count, windowSize: 100)
        print("soak: \(count) generations of \(model) in process \(getpid())")
        func generate(_ i: Int) throws {
            let requests = try (0..<(1 + i % 3)).map { try request(i, $0) }
            let results = try engine.generate(requests)
            tokens += results.reduce(0) { $0 + $1.ids.count }
        }
        func report(_ window: MemorySoak.Window) {
            print(
                "soak: generations \(window.operations.lowerBound)-\(window.operations.upperBound - 1): peak "
                    + String(format: "%.1f MiB, %.1f s", Double(window.peakResidentBytes) / 1_048_576, window.seconds))
        }
        let windows = try soak.run(generate, progress: report)
        let growth = MemorySoak.growth(windows)
        print(
            "soak: \(tokens) tokens generated; last window's peak "
                + "\(String(format: "%+.2f", growth * 100)) % against the first's")
        #expect(growth <= 0.05, "peak memory grew \(growth * 100) %")
    }
}
