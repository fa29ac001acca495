import Foundation
import Testing

@testable import Nemotron

@Suite("RunConfig files")
struct RunConfigTests {
    func write(_ text: String, in directory: TemporaryDirectory) throws -> String {
        let path = directory.file("run.yaml").path
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    @Test("keys are read and relative model paths resolve against the file")
    func reads() throws {
        let directory = try TemporaryDirectory()
        let path = try write(
            "model: ckpt\nthreads: 2\nmax_new_tokens: 7\ntemperature: 0.5\ntop_k: 5\ntop_p: 0.9\nseed: 3\ntokens: "
                + "[1, 2]\n",
            in: directory)
        let config = try RunConfig(path: path)
        #expect(config.model == directory.url.appendingPathComponent("ckpt").standardized.path)
        #expect(config.threads == 2 && config.maxNewTokens == 7 && config.topK == 5 && config.seed == 3)
        #expect(config.sampling == SamplingParameters(temperature: 0.5, topK: 5, topP: 0.9, seed: 3))
        #expect(config.tokens == [1, 2])
    }

    @Test("unknown keys are rejected by name")
    func unknownKeys() throws {
        let directory = try TemporaryDirectory()
        let path = try write("model: x\ntemprature: 0.7\n", in: directory)
        #expect(throws: NemotronError.unknownConfigKeys(path: path, keys: ["temprature"], allowed: RunConfig.keyNames))
        {
            try RunConfig(path: path)
        }
    }

    @Test("values are type- and range-checked")
    func badValues() throws {
        let directory = try TemporaryDirectory()
        for (text, key) in [
            ("threads: two", "threads"), ("top_p: 1.5", "top_p"), ("temperature: -1", "temperature"),
            ("tokens: [a]", "tokens"),
        ] {
            let path = try write(text, in: directory)
            #expect(throws: NemotronError.self) { try RunConfig(path: path) }
            do { _ = try RunConfig(path: path) } catch { #expect("\(error)".contains("'\(key)'")) }
        }
    }

    @Test("flags override file values; defaults fill the rest")
    func overrides() throws {
        let directory = try TemporaryDirectory()
        let path = try write("threads: 1\nseed: 4\nstop: [a]\nprompts: [x]\n", in: directory)
        var config = try RunConfig(path: path)
        try config.apply(flags: ["--threads", "2", "--stop", "b", "--stop", "c", "--tokens", "1,2"])
        #expect(config.threads == 2 && config.seed == 4 && config.maxNewTokens == 32 && config.prefillChunk == 512)
        #expect(config.stop == ["a", "b", "c"])
        #expect(config.allPrompts == [.tokens([1, 2])], "prompts given by flags replace the file's")
        #expect(throws: NemotronError.self) { try config.apply(flags: ["--compute-dtype", "f64"]) }
        #expect(throws: NemotronError.self) { try config.apply(flags: ["--temprature", "1"]) }
        try config.apply(flags: ["--attention-dp", "--compute-dtype", "bf16"])
        #expect(config.enableAttentionDP && config.computeDType == .bf16)
    }

    @Test("every example config in configs/ loads")
    func examples() throws {
        let configs = Fixture.root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: configs.path).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        for file in files { _ = try RunConfig(path: configs.appendingPathComponent(file).path) }
    }

    @Test("a config given by a relative path resolves its model against the file's directory")
    func relativePath() throws {
        let directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(at: directory.file("sub"), withIntermediateDirectories: true)
        try "model: ../ckpt\n".write(to: directory.file("sub/run.yaml"), atomically: false, encoding: .utf8)
        let cwd = FileManager.default.currentDirectoryPath
        let relative =
            String(repeating: "../", count: cwd.split(separator: "/").count) + directory.url.path.dropFirst()
            + "/sub/run.yaml"
        #expect(try RunConfig(path: relative).model == directory.file("ckpt").standardized.path)
    }
}
