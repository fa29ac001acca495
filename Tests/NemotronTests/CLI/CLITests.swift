import Foundation
import Testing

@testable import Nemotron

/// Runs the built `nemotron-run` binary as a user would.
enum CLI {
    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The products directory holds both the test bundle and the executable.
    static var binary: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("nemotron-run").path),
            directory.path != "/"
        {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("nemotron-run")
    }

    /// The environment without variables a singleton MPI_Init may have left, which would make a
    /// child mpirun or MPI program think it belongs to this job.
    static var cleanEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "PMIX_", "OPAL_"].contains { key.hasPrefix($0) }
        }
    }

    /// Runs the binary with its output going to files (no pipe can fill up), killing it after `timeout`.
    static func run(_ arguments: [String], executable: URL = binary, timeout: TimeInterval = 120) throws -> Output {
        let directory = try TemporaryDirectory()
        let outURL = directory.file("stdout")
        let errURL = directory.file("stderr")
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = cleanEnvironment
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            Issue.record("\(arguments) did not finish within \(timeout) s")
        }
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: try String(contentsOf: outURL, encoding: .utf8),
            stderr: try String(contentsOf: errURL, encoding: .utf8))
    }
}

extension ProcessSuites {
    @Suite("nemotron-run command line", .serialized)
    struct CLITests {
        let dense = Fixture.all[0]

        func tokens(_ fixture: Fixture) throws -> String {
            try fixture.reference.ints("prompt_ids").map(String.init).joined(separator: ",")
        }

        @Test("logits writes [T, V] matching transformers", arguments: [Fixture.all[0], Fixture.all[1]])
        func logits(fixture: Fixture) throws {
            let directory = try TemporaryDirectory()
            let output = directory.file("logits.safetensors")
            let run = try CLI.run([
                "logits", "--model", fixture.directory.path, "--tokens", try tokens(fixture), "--output", output.path,
            ])
            #expect(run.status == 0, "\(run.stderr)")
            let written = try Reference(url: output)
            let reference = try fixture.reference
            #expect(try written.shape("logits") == reference.shape("prefill_logits"))
            #expect(
                maxAbsDifference(try written.floats("logits"), try reference.floats("prefill_logits"))
                    <= fixture.tolerance)
        }

        @Test("generate --json prints greedy ids and writes step logits", arguments: [Fixture.all[0], Fixture.all[2]])
        func generate(fixture: Fixture) throws {
            let directory = try TemporaryDirectory()
            let output = directory.file("steps.safetensors")
            let reference = try fixture.reference
            let expected = try reference.ints("greedy_ids")
            let run = try CLI.run([
                "generate", "--model", fixture.directory.path, "--tokens", try tokens(fixture),
                "--max-new-tokens", "\(expected.count)", "--temperature", "0", "--json", "--logits-output", output.path,
            ])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            #expect(json["generated_ids"] as? [Int] == expected)
            #expect(
                maxAbsDifference(try Reference(url: output).floats("step_logits"), try reference.floats("step_logits"))
                    <= fixture.tolerance)
        }

        @Test("--config works with every command, flags override it")
        func configFile() throws {
            let directory = try TemporaryDirectory()
            let config = directory.file("run.yaml")
            try "model: \(dense.directory.path)\ntokens: [\(try tokens(dense))]\nmax_new_tokens: 3\n".write(
                to: config, atomically: false, encoding: .utf8)
            let generate = try CLI.run(["generate", "--config", config.path, "--json", "--max-new-tokens", "2"])
            #expect(generate.status == 0, "\(generate.stderr)")
            #expect(
                (try JSONSerialization.jsonObject(with: Data(generate.stdout.utf8)) as? [String: Any])?["generated_ids"]
                    as? [Int]
                    == Array(try dense.reference.ints("greedy_ids").prefix(2)))
            #expect(
                try CLI.run(["logits", "--config", config.path, "--output", directory.file("l.safetensors").path])
                    .status == 0)
            #expect(try CLI.run(["inspect", "--config", config.path]).status == 0)
            #expect(
                try CLI.run(["bench", "--config", config.path, "--prompt-tokens", "8", "--new-tokens", "3"]).status == 0
            )
        }

        @Test("inspect reports settings, layer kinds, parameters, dtypes and the BLAS core")
        func inspect() throws {
            let run = try CLI.run(["inspect", "--model", Fixture.all[3].directory.path])
            #expect(run.status == 0, "\(run.stderr)")
            for text in [
                "M-M*M-*M", "mamba2 4, attention 2, mlp 2, moe 0", "parameters         263168", "BF16", "blas core",
            ] {
                #expect(run.stdout.contains(text), "missing \(text)")
            }
            #expect(!run.stdout.contains("Prescott"))
        }

        @Test("after re-executing itself for OpenBLAS, the process is still named nemotron-run")
        func processName() throws {
            let process = Process()
            process.executableURL = CLI.binary
            // Reads its prompts from stdin, which stays open: it waits there.
            process.arguments = ["generate", "--model", dense.directory.path, "--prompt-file", "/dev/stdin"]
            process.environment = CLI.cleanEnvironment.filter { !$0.key.hasPrefix("OPENBLAS_") }
            let input = Pipe()
            process.standardInput = input
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer {
                try? input.fileHandleForWriting.close()
                process.waitUntilExit()
            }
            // The re-executed image is the one whose environment has OPENBLAS_NUM_THREADS.
            let proc = "/proc/\(process.processIdentifier)"
            let deadline = Date().addingTimeInterval(20)
            var reexecuted = false
            while !reexecuted && Date() < deadline && process.isRunning {
                let environ = (try? Data(contentsOf: URL(fileURLWithPath: proc + "/environ"))) ?? Data()
                reexecuted = String(decoding: environ, as: UTF8.self).contains("OPENBLAS_NUM_THREADS=1")
                if !reexecuted { usleep(20_000) }
            }
            #expect(reexecuted)
            let name = try String(contentsOfFile: proc + "/comm", encoding: .utf8)
            #expect(name.trimmingCharacters(in: .whitespacesAndNewlines) == "nemotron-run")
        }

        @Test("bench prints prefill and decode tokens/s and peak memory")
        func bench() throws {
            let run = try CLI.run([
                "bench", "--model", dense.directory.path, "--prompt-tokens", "16", "--new-tokens", "4", "--json",
            ])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            #expect((json["prefill_tokens_per_second"] as? Double ?? 0) > 0)
            #expect((json["decode_tokens_per_second"] as? Double ?? 0) > 0)
            #expect((json["peak_resident_bytes"] as? Int ?? 0) > 0)
        }

        /// Each bad input: non-zero exit, one "error:" line naming the culprit, nothing on stdout.
        @Test(
            "bad inputs fail clearly",
            arguments: [
                (["--tokens", "1,2,600"], "token id 600 at position 2 is outside the vocabulary 0..<512"),
                (["--tokens", ""], "the token list is empty"),
                (["--tokens", "1,x"], "--tokens = 'x' is invalid"),
                (
                    ["--tokens", "1", "--threads", "-1"],
                    "key 'threads' has value -1; expected an integer >= 1 (or 0: automatic)"
                ),
                (
                    ["--tokens", "1", "--compute-dtype", "f64"],
                    "key 'compute_dtype' has value f64; expected one of auto, f32, bf16, int8"
                ),
                (["--tokens", "1", "--no-such-flag", "1"], "--no-such-flag = (unknown) is invalid"),
            ])
        func badArguments(arguments: [String], message: String) throws {
            let run = try CLI.run(["generate", "--model", dense.directory.path] + arguments)
            #expect(run.status != 0)
            #expect(run.stderr.contains("error: ") && run.stderr.contains(message), "\(run.stderr)")
            #expect(run.stdout.isEmpty)
        }

        @Test("under taskset to one CPU: one thread by default, a warning when asked for more, the same tokens")
        func threadPlacement() throws {
            let taskset = URL(fileURLWithPath: "/usr/bin/taskset")
            try #require(FileManager.default.isExecutableFile(atPath: taskset.path), "taskset (util-linux) is needed")
            let cpu = try #require(CPUAffinity.allowedCPUs().first)
            let arguments = [
                "-c", "\(cpu)", CLI.binary.path, "generate", "--model", dense.directory.path, "--tokens",
                try tokens(dense), "--max-new-tokens", "3", "--json",
            ]
            let automatic = try CLI.run(arguments, executable: taskset)
            #expect(automatic.status == 0, "\(automatic.stderr)")
            #expect(automatic.stderr.contains("1 rank(s) × 1 thread(s)"), "\(automatic.stderr)")
            // The note needs CPUs left idle by the binding: none on a machine of one CPU.
            #expect(
                automatic.stderr.contains("note: this process may run on 1 of the node's")
                    == (CPUAffinity.onlineCount > 1), "\(automatic.stderr)")
            let oversubscribed = try CLI.run(arguments + ["--threads", "3"], executable: taskset)
            #expect(oversubscribed.status == 0, "\(oversubscribed.stderr)")
            #expect(
                oversubscribed.stderr.contains("warning: 3 compute threads share the 1 CPU(s) this process may run on"),
                "\(oversubscribed.stderr)")
            func ids(_ output: CLI.Output) throws -> [Int] {
                let object = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
                return try #require(object?["generated_ids"] as? [Int], "\(output.stdout)")
            }
            #expect(try ids(oversubscribed) == ids(automatic))
        }

        @Test("bad files fail clearly")
        func badFiles() throws {
            let directory = try TemporaryDirectory()
            let config = directory.file("run.yaml")
            try "model: \(dense.directory.path)\nmax_tokens: 3\n".write(to: config, atomically: false, encoding: .utf8)
            let unknownKey = try CLI.run(["generate", "--config", config.path, "--tokens", "1"])
            #expect(
                unknownKey.status != 0
                    && unknownKey.stderr.contains("\(config.path): unknown key 'max_tokens'; allowed keys: model,"))

            let missing = try CLI.run(["generate", "--model", directory.file("nowhere").path, "--tokens", "1"])
            #expect(missing.status != 0 && missing.stderr.contains("nowhere/config.json: not found"))

            let broken = try directory.copy(dense)
            let configURL = broken.appendingPathComponent("config.json")
            var json = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
            json["hidden_size"] = nil
            try JSONSerialization.data(withJSONObject: json).write(to: configURL)
            let missingKey = try CLI.run(["generate", "--model", broken.path, "--tokens", "1"])
            #expect(
                missingKey.status != 0
                    && missingKey.stderr.contains("config.json: required key 'hidden_size' is missing"))
        }

        @Test("the example configs run", arguments: ["tiny.yaml", "sampling-example.yaml"])
        func exampleConfigs(file: String) throws {
            let configs = Fixture.root.deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
                .appendingPathComponent("configs")
            let run = try CLI.run(["generate", "--config", configs.appendingPathComponent(file).path, "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            let records = run.stdout.split(separator: "\n").map {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(!records.isEmpty)
            #expect(records.allSatisfy { ($0?["generated_ids"] as? [Int])?.isEmpty == false })
        }
    }
}
