import Foundation
import Testing

@testable import Nemotron

extension ProcessSuites {
    /// Issue 15's classes of bad input through the built binary, alone and under `mpirun -np 2`:
    /// each gives one clear `error:` line, a non-zero exit on every rank, nothing on stdout, and
    /// nothing left in /dev/shm or in the run's temporary directory. Budgets that used to crash
    /// (`Int.max`, 10⁹ new tokens) run.
    @Suite("Reliability: bad inputs on the command line", .serialized)
    struct BadInputCommandTests {
        struct Outcome {
            let status: Int32
            let stdout: String
            let stderr: String
            /// Each rank's exit status, by rank; nil for a rank mpirun stopped before it could record
            /// one (once another rank has failed, mpirun ends the job).
            let rankStatuses: [Int32?]
            /// What the run left in its TMPDIR.
            let leftovers: [String]
            /// New /dev/shm entries left behind (`leftBehind`).
            let newSharedMemory: Set<String>
        }

        static let repository = Fixture.root.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        static let tiny = repository.appendingPathComponent("models/tiny")
        static let demo = repository.appendingPathComponent("models/demo-dense")
        static let dense = Fixture.all[0].directory

        static func sharedMemory() -> Set<String> {
            Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
        }

        /// New /dev/shm entries of this run that no live process maps or holds open: left behind.
        /// Other jobs on the machine (a teammate's tests) create and remove their own meanwhile, so
        /// Open MPI's segments, named `…<jobid in hex>.<rank>`, count only with this run's job id
        /// (`job`, from mpirun), or as a lone rank 0 for a singleton run.
        static func leftBehind(_ entries: Set<String>, job: Int?) -> Set<String> {
            let ours = entries.filter { name in
                guard name.hasPrefix("vader_segment.") else { return true }
                if let job, job > 0 { return name.contains(".\(String(job, radix: 16)).") }
                let stem = name.split(separator: ".").dropLast().joined(separator: ".")
                return name.hasSuffix(".0") && !entries.contains(stem + ".1")
            }
            let present = ours.intersection(sharedMemory())
            guard !present.isEmpty else { return [] }
            var used = Set<String>()
            for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(pid) != nil {
                if let maps = try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8) {
                    for name in present where maps.contains("/dev/shm/\(name)") { used.insert(name) }
                }
                for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
                    if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                        target.hasPrefix("/dev/shm/")
                    {
                        used.insert(String(target.dropFirst("/dev/shm/".count)))
                    }
                }
            }
            return present.subtracting(used)
        }

        /// Runs nemotron-run ARGS (under `mpirun -np ranks` when ranks > 1, with one thread per
        /// rank unless ARGS set them), each rank through a shell that records its exit status,
        /// with a TMPDIR of its own. `prefix` runs before the shell (setpriv, prlimit).
        static func run(_ arguments: [String], ranks: Int = 1, prefix: [String] = [], timeout: TimeInterval = 120)
            throws -> Outcome
        {
            let temporary = try TemporaryDirectory()
            let statuses = try TemporaryDirectory()
            for url in [temporary.url, statuses.url] {
                try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: url.path)
            }
            let record =
                "echo \"${OMPI_MCA_ess_base_jobid:-}\" > \"\(statuses.url.path)/job\"; \"$0\" \"$@\"; code=$?; "
                + "echo $code > \"\(statuses.url.path)/rank.${OMPI_COMM_WORLD_RANK:-0}\"; exit $code"
            let threads = arguments.contains("--threads") ? [] : ["--threads", "1"]
            let command =
                ranks == 1
                ? prefix + ["/bin/sh", "-c", record, CLI.binary.path] + arguments
                : prefix + [
                    ProcessSuites.TensorParallelTests.mpirun.path, "--allow-run-as-root", "--oversubscribe", "-np",
                    "\(ranks)", "/bin/sh", "-c", record, CLI.binary.path,
                ] + arguments + threads
            let before = sharedMemory()
            let output = directoryFiles(try TemporaryDirectory())
            let process = Process()
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            var environment = CLI.cleanEnvironment
            environment["TMPDIR"] = temporary.url.path
            process.environment = environment
            process.standardOutput = try FileHandle(forWritingTo: output.stdout)
            process.standardError = try FileHandle(forWritingTo: output.stderr)
            try process.run()
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                process.terminate()
                Issue.record("\(arguments) did not finish within \(timeout) s")
            }
            process.waitUntilExit()
            let rankStatuses = (0..<ranks).map { rank in
                (try? String(contentsOf: statuses.file("rank.\(rank)"), encoding: .utf8))
                    .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            return Outcome(
                status: process.terminationStatus,
                stdout: try String(contentsOf: output.stdout, encoding: .utf8),
                stderr: try String(contentsOf: output.stderr, encoding: .utf8), rankStatuses: rankStatuses,
                leftovers: (try? FileManager.default.contentsOfDirectory(atPath: temporary.url.path)) ?? [],
                newSharedMemory: leftBehind(
                    sharedMemory().subtracting(before),
                    job: (try? String(contentsOf: statuses.file("job"), encoding: .utf8)).flatMap {
                        Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
                    }))
        }

        /// Empty stdout and stderr files in a directory kept alive by the returned value.
        static func directoryFiles(_ directory: TemporaryDirectory) -> (
            stdout: URL, stderr: URL, keep: TemporaryDirectory
        ) {
            let (out, err) = (directory.file("stdout"), directory.file("stderr"))
            FileManager.default.createFile(atPath: out.path, contents: nil)
            FileManager.default.createFile(atPath: err.path, contents: nil)
            return (out, err, directory)
        }

        /// The failure contract: non-zero on every rank, one `error:` line with `message`, nothing
        /// on stdout, nothing left behind.
        static func expectFailure(
            _ arguments: [String], ranks: Int = 1, prefix: [String] = [], message: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let outcome = try run(arguments, ranks: ranks, prefix: prefix)
            #expect(outcome.status != 0, "exit status", sourceLocation: sourceLocation)
            // Every rank that ended by itself did so with a non-zero status; the others were
            // stopped by mpirun because one had failed.
            #expect(
                outcome.rankStatuses.contains { $0 != nil } && outcome.rankStatuses.allSatisfy { ($0 ?? 1) > 0 },
                "rank statuses \(outcome.rankStatuses)", sourceLocation: sourceLocation)
            let errors = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
            #expect(
                errors.count == 1 && errors[0].contains(message), "\(ranks) rank(s): \(outcome.stderr)",
                sourceLocation: sourceLocation)
            #expect(outcome.stdout.isEmpty, "stdout: \(outcome.stdout)", sourceLocation: sourceLocation)
            #expect(outcome.leftovers.isEmpty, "left in TMPDIR: \(outcome.leftovers)", sourceLocation: sourceLocation)
            #expect(
                outcome.newSharedMemory.isEmpty, "/dev/shm entries left: \(outcome.newSharedMemory)",
                sourceLocation: sourceLocation)
        }

        /// A copy of `source`'s safetensors file with its header text changed.
        static func rewriteHeader(_ source: URL, in directory: URL, _ change: (String) -> String) throws -> Data {
            let data = try Data(contentsOf: source)
            let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            var header = Data(change(String(decoding: data.subdata(in: 8..<8 + length), as: UTF8.self)).utf8)
            while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
            var out = Data()
            withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
            return out + header + data.subdata(in: 8 + length..<data.count)
        }

        @Test("safetensors: a shape whose size overflows, and a tensor named twice", arguments: [1, 2])
        func safetensors(ranks: Int) throws {
            let directory = try TemporaryDirectory()
            let weights = Self.dense.appendingPathComponent("model.safetensors")
            let overflow = try Self.rewriteHeader(weights, in: directory.url) {
                $0.replacingOccurrences(of: "\"shape\":[64]", with: "\"shape\":[4611686018427387904,64]")
                    .replacingOccurrences(of: "\"shape\": [64]", with: "\"shape\": [4611686018427387904, 64]")
            }
            let first = try DamagedFiles.checkpoint(
                linking: Self.dense, in: directory.url, replacing: ["model.safetensors": overflow])
            try Self.expectFailure(
                ["generate", "--model", first.path, "--tokens", "1,2"], ranks: ranks,
                message: "model.safetensors: not a valid safetensors file: tensor 'backbone.")
            let twice = try Self.rewriteHeader(weights, in: directory.url) {
                $0.replacingOccurrences(of: "\"backbone.layers.0.mixer.D\"", with: "\"backbone.layers.0.mixer.A_log\"")
            }
            let second = try DamagedFiles.checkpoint(
                linking: Self.dense, in: directory.url, replacing: ["model.safetensors": twice])
            try Self.expectFailure(
                ["generate", "--model", second.path, "--tokens", "1,2"], ranks: ranks,
                message: "header: invalid JSON at line 1, column")
        }

        @Test("tokenizer.json: a negative id and a merge of unknown tokens")
        func tokenizer() throws {
            let directory = try TemporaryDirectory()
            let file = Self.tiny.appendingPathComponent("tokenizer.json")
            let negative = try DamagedFiles.json(file) { json in
                var model = json["model"] as! [String: Any]
                var vocab = model["vocab"] as! [String: Any]
                vocab["Ġa"] = -7
                model["vocab"] = vocab
                json["model"] = model
            }
            let unknownMerge = try DamagedFiles.json(file) { json in
                var model = json["model"] as! [String: Any]
                model["merges"] = (model["merges"] as! [Any]) + [["Ġa", "no-such-token"]]
                json["model"] = model
            }
            for (data, message) in [
                (negative, #"tokenizer.json: key 'model.vocab["Ġa"]' has value -7; expected an integer id"#),
                (unknownMerge, #"("no-such-token" is not)"#),
            ] {
                let checkpoint = try DamagedFiles.checkpoint(
                    linking: Self.tiny, in: directory.url, replacing: ["tokenizer.json": data])
                try Self.expectFailure(["generate", "--model", checkpoint.path, "--prompt", "hello"], message: message)
            }
        }

        @Test("config.json: head_dim 0, a negative epsilon, a pattern shorter than the checkpoint", arguments: [1, 2])
        func config(ranks: Int) throws {
            let directory = try TemporaryDirectory()
            let file = Self.dense.appendingPathComponent("config.json")
            let cases: [(Data, String)] = [
                (try DamagedFiles.json(file) { $0["head_dim"] = 0 }, "key 'head_dim' has value 0; expected a positive"),
                (
                    try DamagedFiles.json(file) { $0["layer_norm_epsilon"] = -1e-5 },
                    "key 'layer_norm_epsilon' has value -1e-05; expected a finite positive number"
                ),
                (
                    try DamagedFiles.json(file) {
                        $0["layers_block_type"] = Array(($0["layers_block_type"] as! [Any]).prefix(5))
                    }, "the weights have layers up to 7"
                ),
            ]
            for (data, message) in cases {
                let checkpoint = try DamagedFiles.checkpoint(
                    linking: Self.dense, in: directory.url, replacing: ["config.json": data])
                try Self.expectFailure(
                    ["generate", "--model", checkpoint.path, "--tokens", "1,2"], ranks: ranks, message: message)
            }
        }

        @Test("NaN weights: a norm weight at load, a matrix at the first token", arguments: [1, 2])
        func nanWeights(ranks: Int) throws {
            let directory = try TemporaryDirectory()
            let norm = try directory.copy(Fixture.all[0])
            try DamagedFiles.setFloat(
                .nan, at: 2, of: "backbone.layers.1.norm.weight", in: norm.appendingPathComponent("model.safetensors"))
            try Self.expectFailure(
                ["generate", "--model", norm.path, "--tokens", "1,2"], ranks: ranks,
                message: "tensor 'backbone.layers.1.norm.weight' holds nan at element 2")
            let matrix = directory.url.appendingPathComponent("matrix")
            try FileManager.default.copyItem(at: Fixture.all[0].directory, to: matrix)
            try DamagedFiles.setFloat(
                .nan, at: 0, of: "backbone.layers.0.mixer.in_proj.weight",
                in: matrix.appendingPathComponent("model.safetensors"))
            for arguments in [["--tokens", "1,2"], ["--tokens", "1,2", "--json"]] {
                try Self.expectFailure(
                    ["generate", "--model", matrix.path] + arguments, ranks: ranks,
                    message: "the logits for token 0 of prompt 0 are not finite (NaN or infinity)")
            }
        }

        @Test("bench and perplexity: prompt lengths below 1 or beyond memory, a tokenizer of another checkpoint")
        func otherCommands() throws {
            let dense = Self.dense.path
            try Self.expectFailure(
                ["bench", "--model", dense, "--prompt-tokens=0"],
                message: "--prompt-tokens = 0 is invalid; expected an integer >= 1")
            try Self.expectFailure(
                ["bench", "--model", dense, "--prompt-tokens", "1000000000", "--new-tokens", "1"],
                message: "the prompt has 1000000000 tokens, more than the")
            let directory = try TemporaryDirectory()
            let text = directory.file("text.txt")
            try String(repeating: "hello world, this is a test of many words. ", count: 20).write(
                to: text, atomically: false, encoding: .utf8)
            let mixed = try DamagedFiles.checkpoint(
                linking: Self.dense, in: directory.url,
                replacing: [
                    "tokenizer.json": try Data(contentsOf: Self.tiny.appendingPathComponent("tokenizer.json"))
                ])
            for ranks in [1, 2] {
                try Self.expectFailure(
                    ["perplexity", "--model", mixed.path, "--text-file", text.path], ranks: ranks,
                    message: "outside the model's vocabulary 0..<512 (vocab_size in config.json): tokenizer.json does "
                        + "not belong to this checkpoint")
            }
        }

        @Test("--threads beyond 8 per CPU", arguments: [1, 2])
        func tooManyThreads(ranks: Int) throws {
            try Self.expectFailure(
                ["generate", "--model", Self.dense.path, "--tokens", "1", "--threads", "100000"], ranks: ranks,
                message: "key 'threads' has value 100000; expected an integer >= 1 (or 0: automatic) and at most "
                    + "\(ThreadPool.maxThreads)")
        }

        /// As an unprivileged user under a thread limit (`prlimit --nproc`), creating the compute
        /// threads fails at some limit. Every run then either works or ends with the error; none
        /// hangs or crashes. (Below some limit, Open MPI or OpenBLAS fail before nemotron-run's code.)
        @Test("a thread limit that the compute threads cannot fit ends the run with an error, never a hang")
        func threadLimit() throws {
            guard getuid() == 0, ThreadPool.maxThreads >= 16 else {
                print("skipped: needs root (to run as nobody under a thread limit) and at least 2 CPUs")
                return
            }
            var reported = 0
            // 16 compute threads and the runtime's few fit in about 24 (OpenBLAS starts none of
            // its own: it runs one thread), so the limits start lower.
            for limit in stride(from: 8, through: 64, by: 8) {
                let outcome = try Self.run(
                    ["generate", "--model", Self.dense.path, "--tokens", "1,2", "--threads", "16"],
                    prefix: [
                        "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/prlimit",
                        "--nproc=\(limit)",
                    ], timeout: 60)
                let ours = outcome.stderr.contains("error: cannot start 16 compute threads")
                let before = outcome.stderr.contains("OpenBLAS blas_thread_init") || outcome.stderr.contains("MPI")
                #expect(outcome.status == 0 || ours || before, "limit \(limit): \(outcome.status) \(outcome.stderr)")
                #expect(outcome.status != 139 && outcome.status != 134, "crashed at limit \(limit)")
                if ours {
                    reported += 1
                    #expect(outcome.status == 1 && outcome.stdout.isEmpty && outcome.leftovers.isEmpty)
                }
            }
            #expect(reported > 0, "no thread limit between 8 and 64 reached nemotron-run's check")
        }

        @Test("a prompt longer than memory allows names the limit")
        func promptTooLong() throws {
            let directory = try TemporaryDirectory()
            let prompts = directory.file("long.txt")
            try String(repeating: "hello world ", count: 200_000).write(to: prompts, atomically: false, encoding: .utf8)
            try Self.expectFailure(
                ["generate", "--model", Self.tiny.path, "--prompt-file", prompts.path, "--max-new-tokens", "1"],
                prefix: ["/usr/bin/prlimit", "--as=\(1 << 30)"],
                message: "whose context fits in the memory available to this process (1.0 GiB")
        }

        @Test(
            "prompt files: a '{' line that is not JSON, ids 1.9 and true, bytes that are not UTF-8", arguments: [1, 2])
        func promptFiles(ranks: Int) throws {
            let directory = try TemporaryDirectory()
            for (bytes, message) in [
                (Array("hello\n{\"prompt\": \"x\"\n".utf8), "line 2 starts with '{' but is not a JSON object"),
                (Array("{\"tokens\": [1.9]}\n".utf8), "\"tokens\" list of integers"),
                (Array("{\"tokens\": [1, true]}\n".utf8), "\"tokens\" list of integers"),
                ([0x68, 0x69, 0xC3, 0x28, 0x0A], "line 1 is not UTF-8 text"),
            ] {
                let file = directory.file("prompts-\(UUID().uuidString.prefix(6)).txt")
                try Data(bytes).write(to: file)
                try Self.expectFailure(
                    ["generate", "--model", Self.tiny.path, "--prompt-file", file.path], ranks: ranks, message: message)
            }
        }

        @Test("a prompt file with Windows line endings gives one prompt per line")
        func crlfPromptFile() throws {
            let directory = try TemporaryDirectory()
            let file = directory.file("prompts.txt")
            try Data("Hello\r\nworld\r\n".utf8).write(to: file)
            let outcome = try Self.run([
                "generate", "--model", Self.tiny.path, "--prompt-file", file.path, "--max-new-tokens", "2", "--json",
            ])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let prompts = outcome.stdout.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["prompt"] as? String
            }
            #expect(prompts == ["Hello", "world"])
        }

        /// The budget used to be reserved as KV cache up front (10⁹ aborted) and added to the
        /// prompt length (Int.max overflowed); now it only bounds the run, which the stop string ends.
        @Test(
            "max_new_tokens of Int.max or 10⁹ generates until a stop string",
            arguments: [("9223372036854775807", 1), ("9223372036854775807", 2), ("1000000000", 1)])
        func hugeBudgets(budget: String, ranks: Int) throws {
            let outcome = try Self.run(
                [
                    "generate", "--model", Self.demo.path, "--prompt", "The :mod:`json` module", "--temperature", "0",
                    "--max-new-tokens", budget, "--stop", "\n", "--json",
                ], ranks: ranks)
            #expect(outcome.status == 0 && outcome.rankStatuses.allSatisfy { $0 == 0 }, "\(outcome.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any]
            #expect(json?["finish_reason"] as? String == "stop")
            #expect(
                (json?["text"] as? String)?.hasPrefix(" provides a :class:`bytes` object") == true, "\(outcome.stdout)")
            #expect(outcome.leftovers.isEmpty && outcome.newSharedMemory.isEmpty)
        }
    }
}
