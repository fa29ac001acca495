import Foundation
import Testing

@testable import Nemotron

/// `mpirun -np 2 nemotron-run serve` on a free loopback port: one job started, driven with a
/// real client and stopped per test. Replaces nothing in the job; talks only to 127.0.0.1.
final class ServeJob {
    let process = Process()
    let directory: TemporaryDirectory
    private(set) var port = 0

    /// Starts the job and waits (up to 120 s) for rank 0's line with the address.
    init(ranks: Int = 2, _ arguments: [String]) throws {
        directory = try TemporaryDirectory()
        try Data().write(to: directory.file("stdout"))
        try Data().write(to: directory.file("stderr"))
        process.executableURL = ProcessSuites.TensorParallelTests.mpirun
        process.arguments =
            ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", CLI.binary.path, "serve", "--port", "0"]
            + arguments + ["--threads", "1"]
        process.environment = CLI.cleanEnvironment
        process.standardOutput = try FileHandle(forWritingTo: directory.file("stdout"))
        process.standardError = try FileHandle(forWritingTo: directory.file("stderr"))
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && process.isRunning {
            if let match = stderr.firstMatch(of: /http:\/\/127\.0\.0\.1:(\d+)/), let port = Int(match.1) {
                self.port = port
                return
            }
            usleep(50_000)
        }
        stop()
        throw ServeTestError.notStarted(stderr)
    }

    deinit { stop() }

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var stderr: String { (try? String(contentsOf: directory.file("stderr"), encoding: .utf8)) ?? "" }

    /// The MPI ranks: mpirun's child processes.
    var ranks: [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == process.processIdentifier
        }.sorted()
    }

    /// Waits for mpirun to end; its status, or nil after `timeout`.
    func wait(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Ends the job if it still runs: SIGTERM to the ranks (a graceful stop), then mpirun is killed.
    func stop() {
        guard process.isRunning else { return }
        for rank in ranks { kill(rank, SIGTERM) }
        if wait(timeout: 10) == nil {
            process.terminate()
            _ = wait(timeout: 10)
        }
    }
}

enum ServeTestError: Error {
    case notStarted(String)
}

/// The names in /dev/shm (MPI's shared-memory segments), to compare before and after a job.
func sharedMemory() throws -> Set<String> {
    Set(try FileManager.default.contentsOfDirectory(atPath: "/dev/shm"))
}

/// Entries in /dev/shm that were not there `before` and are still there after up to 10 s (an MPI
/// job running beside the tests, as on a shared development machine, has its own for a while).
func leftoverSharedMemory(since before: Set<String>) throws -> Set<String> {
    let deadline = Date().addingTimeInterval(10)
    var left = try sharedMemory().subtracting(before)
    while !left.isEmpty && Date() < deadline {
        usleep(100_000)
        left = left.intersection(try sharedMemory())
    }
    return left
}

/// Whether a process still exists and is not a zombie.
func isAlive(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return !stat[stat.index(after: close)...].hasPrefix(" Z")
}

extension ProcessSuites {
    /// The OpenAI-compatible server under `mpirun -np 2`, driven with the `openai` Python package
    /// (in a virtual environment scripts/serve-venv.sh makes under .build/) and with curl by
    /// scripts/serve-client-test.py, against `generate`'s ids and text for the same prompts.
    @Suite("serve under mpirun", .serialized)
    struct ServeTests {
        static let model = Fixture.root.appendingPathComponent("replicas/nemotron-3")
        static let root = Fixture.root.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        /// A small batch and queue so that the 32 concurrent requests queue and join at step
        /// boundaries; capacity 8 × batches + 16 or 24.
        static let limits = [
            "--compute-dtype", "f32", "--max-batch-size", "8", "--max-model-len", "256", "--max-request-bytes", "65536",
        ]

        /// `generate --json` under mpirun -np 2 for the cases the client test compares with.
        func expectedCases() throws -> [[String: Any]] {
            func generate(_ arguments: [String]) throws -> [[String: Any]] {
                let run = try TensorParallelTests.run(
                    ranks: 2,
                    ["generate", "--model", Self.model.path, "--json", "--compute-dtype", "f32"] + arguments)
                #expect(run.status == 0, "\(run.stderr)")
                return try run.stdout.split(separator: "\n").map {
                    try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
                }
            }
            let completions = ["The quick brown fox", "Héllo, wörld: 日本語 ✓"]
            let chats = ["Who are you?", "Say something long."]
            var cases: [[String: Any]] = []
            func add(
                _ records: [[String: Any]], kind: String, prompts: [String], maxTokens: Int, sampling: [String: Any]?
            ) {
                for (prompt, record) in zip(prompts, records) {
                    var item: [String: Any] = [
                        "kind": kind, "prompt": prompt, "max_tokens": maxTokens, "prompt_ids": record["prompt_ids"]!,
                        "generated_ids": record["generated_ids"]!, "text": record["text"]!,
                        "finish_reason": record["finish_reason"]!,
                    ]
                    if let sampling { item["sampling"] = sampling }
                    cases.append(item)
                }
            }
            add(
                try generate(completions.flatMap { ["--prompt", $0] } + ["--max-new-tokens", "12"]),
                kind: "completion", prompts: completions, maxTokens: 12, sampling: nil)
            add(
                try generate(["--chat"] + chats.flatMap { ["--prompt", $0] } + ["--max-new-tokens", "10"]),
                kind: "chat", prompts: chats, maxTokens: 10, sampling: nil)
            add(
                try generate([
                    "--prompt", "Sampled text", "--temperature", "0.8", "--top-k", "20", "--seed", "7",
                    "--max-new-tokens", "10",
                ]), kind: "completion", prompts: ["Sampled text"], maxTokens: 10,
                sampling: ["temperature": 0.8, "top_k": 20, "seed": 7])
            return cases
        }

        /// Runs scripts/serve-client-test.py against `job`; every check must pass.
        func clientChecks(_ job: ServeJob, capacity: Int, checks: String) throws {
            let venv = try CLI.run(
                [Self.root.appendingPathComponent("scripts/serve-venv.sh").path],
                executable: URL(fileURLWithPath: "/bin/bash"), timeout: 600)
            try #require(venv.status == 0, "could not make the openai venv: \(venv.stderr)")
            let python = venv.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let expected: [String: Any] = [
                "model": "nemotron-3", "max_model_len": 256, "max_request_bytes": 65536, "capacity": capacity,
                "cases": try expectedCases(),
            ]
            let file = job.directory.file("expected.json")
            try JSONSerialization.data(withJSONObject: expected).write(to: file)
            let run = try CLI.run(
                [
                    Self.root.appendingPathComponent("scripts/serve-client-test.py").path, "--base-url",
                    job.baseURL, "--expected", file.path, "--checks", checks,
                ], executable: URL(fileURLWithPath: python), timeout: 600)
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)\nserver: \(job.stderr)")
            #expect(run.stdout.contains(" passed, 0 failed"), "\(run.stdout)")
        }

        @Test("tensor parallel: completions and chat as generate, streams, 32 at once, 400s, 503, killed client")
        func tensorParallel() throws {
            let shared = try sharedMemory()
            let job = try ServeJob(["--model", Self.model.path, "--max-queue", "24"] + Self.limits)
            try clientChecks(job, capacity: 32, checks: "parity,concurrency,bad,killed,queue,endpoints")
            // A graceful stop: SIGTERM to every rank, each exits 0, nothing left in /dev/shm.
            let ranks = job.ranks
            #expect(ranks.count == 2)
            for rank in ranks { kill(rank, SIGTERM) }
            #expect(job.wait(timeout: 15) == 0, "\(job.stderr)")
            #expect(ranks.allSatisfy { !isAlive($0) })
            let leftovers = try leftoverSharedMemory(since: shared)
            #expect(leftovers.isEmpty, "\(leftovers)")
        }

        @Test("attention data parallel: requests go to ranks by load and stream from rank 0; the same ids")
        func attentionDataParallel() throws {
            let job = try ServeJob(["--model", Self.model.path, "--attention-dp", "--max-queue", "16"] + Self.limits)
            try clientChecks(job, capacity: 32, checks: "parity,concurrency,killed,endpoints")
            for rank in job.ranks { kill(rank, SIGTERM) }
            #expect(job.wait(timeout: 15) == 0, "\(job.stderr)")
        }

        @Test("SIGTERM to rank 0 alone with a stream in flight: the stream ends, every rank exits 0")
        func gracefulShutdown() throws {
            let shared = try sharedMemory()
            let job = try ServeJob(["--model", Self.model.path] + Self.limits)
            let ranks = job.ranks
            let stream = try CurlStream(
                url: job.baseURL + "/v1/completions",
                body: #"{"prompt": "a long story", "max_tokens": 200, "ignore_eos": true, "stream": true}"#)
            #expect(stream.waitForOutput(containing: "data: {", timeout: 30))
            kill(ranks[0], SIGTERM)
            #expect(job.wait(timeout: 15) == 0, "\(job.stderr)")
            #expect(stream.wait(timeout: 10))
            #expect(stream.output.contains("shutting down") && stream.output.hasSuffix("data: [DONE]\n\n"))
            #expect(ranks.allSatisfy { !isAlive($0) })
            #expect(try leftoverSharedMemory(since: shared).isEmpty)
        }

        @Test("a killed rank ends the whole job within 5 s", arguments: [0, 1])
        func killedRank(victim: Int) throws {
            let shared = try sharedMemory()
            let job = try ServeJob(["--model", Self.model.path] + Self.limits)
            let ranks = job.ranks
            try #require(ranks.count == 2)
            let start = Date()
            kill(ranks[victim], SIGKILL)
            let status = job.wait(timeout: 30)
            let deadline = Date().addingTimeInterval(5)
            while ranks.contains(where: isAlive) && Date() < deadline { usleep(20_000) }
            let elapsed = Date().timeIntervalSince(start)
            #expect(status != nil && status != 0)
            #expect(!ranks.contains(where: isAlive))
            #expect(elapsed < 5, "the job took \(elapsed) s to end")
            #expect(try leftoverSharedMemory(since: shared).isEmpty)
        }

        @Test("the server's keys are checked like the others")
        func keys() throws {
            for (flags, message) in [
                (["--port", "70000"], "port"), (["--max-batch-size", "0"], "max_batch_size"),
                (["--max-queue", "-1"], "max_queue"), (["--max-model-len", "x"], "--max-model-len"),
            ] {
                let run = try CLI.run(["serve", "--model", Self.model.path] + flags, timeout: 30)
                #expect(
                    run.status != 0 && run.stderr.contains("error:") && run.stderr.contains(message), "\(run.stderr)")
            }
            let directory = try TemporaryDirectory()
            let config = directory.file("serve.yaml")
            try "model: \(Self.model.path)\nport: 0\nmax_batch_sise: 4\n".write(
                to: config, atomically: false, encoding: .utf8)
            let run = try CLI.run(["serve", "--config", config.path], timeout: 30)
            #expect(run.status != 0 && run.stderr.contains("max_batch_sise"), "\(run.stderr)")
        }
    }
}

/// `curl -N` streaming a request in the background, its output in a file.
final class CurlStream {
    let process = Process()
    let file: URL
    private let directory: TemporaryDirectory

    init(url: String, body: String) throws {
        directory = try TemporaryDirectory()
        file = directory.file("stream")
        try Data().write(to: file)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "-N", "--max-time", "60", url, "-H", "Content-Type: application/json", "-d", body]
        process.standardOutput = try FileHandle(forWritingTo: file)
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit { if process.isRunning { process.terminate() } }

    var output: String { (try? String(contentsOf: file, encoding: .utf8)) ?? "" }

    func waitForOutput(containing text: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !output.contains(text) && Date() < deadline { usleep(20_000) }
        return output.contains(text)
    }

    func wait(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }
}
