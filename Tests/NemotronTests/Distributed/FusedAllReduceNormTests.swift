import Foundation
import Testing

@testable import Nemotron

@Suite("Fused AllReduce + residual + RMSNorm")
struct FusedAllReduceNormTests {
    @Test("fusion turns itself off at tp 1 and with attention data parallelism, whatever was asked")
    func autoDisable() {
        for asked in FuseAllReduceNorm.allCases {
            #expect(!asked.resolve(tpSize: 1, attentionDataParallel: false).enabled)
            #expect(asked.resolve(tpSize: 1, attentionDataParallel: false).reason.contains("tp_size is 1"))
            #expect(!asked.resolve(tpSize: 4, attentionDataParallel: true).enabled)
            #expect(asked.resolve(tpSize: 4, attentionDataParallel: true).reason.contains("attention data parallelism"))
        }
        #expect(FuseAllReduceNorm.auto.resolve(tpSize: 2, attentionDataParallel: false).enabled)
        #expect(FuseAllReduceNorm.on.resolve(tpSize: 2, attentionDataParallel: false).enabled)
        #expect(!FuseAllReduceNorm.off.resolve(tpSize: 2, attentionDataParallel: false).enabled)
    }

    @Test("auto picks shared memory on one node and MPI or the ring across nodes")
    func automatic() {
        #expect(AllReduceStrategy.choice(bytes: 8 << 20, ranks: 2, singleNode: true) == .oneshot)
        #expect(AllReduceStrategy.choice(bytes: 8 << 10, ranks: 2, singleNode: true) == .oneshot)
        #expect(AllReduceStrategy.choice(bytes: 16 << 10, ranks: 4, singleNode: true) == .oneshot)
        #expect(AllReduceStrategy.choice(bytes: 64 << 10, ranks: 4, singleNode: true) == .twoshot)
        for ranks in [8, 16] {
            #expect(AllReduceStrategy.choice(bytes: 8 << 10, ranks: ranks, singleNode: true) == .twoshot)
        }
        for ranks in [4, 8, 16] {
            #expect(AllReduceStrategy.choice(bytes: 8 << 20, ranks: ranks, singleNode: true) == .twoshot)
        }
        #expect(AllReduceStrategy.choice(bytes: 8 << 10, ranks: 4, singleNode: false) == .mpi)
        #expect(AllReduceStrategy.choice(bytes: 4 << 20, ranks: 4, singleNode: false) == .ring)
        #expect(AllReduceStrategy.allCases.filter(\.needsSharedMemory) == [.oneshot, .twoshot])
    }

    @Test("the fused epilogue equals the separate passes bit for bit", arguments: [1, 3, 8], [2, 3, 4])
    func epilogue(rows: Int, ranks: Int) {
        let width = 67
        var random = Xoshiro256(seed: UInt64(rows * 10 + ranks))
        let partials = (0..<ranks).map { _ in (0..<rows * width).map { _ in Float(random.nextUnit()) - 0.5 } }
        let residual0 = (0..<rows * width).map { _ in Float(random.nextUnit()) * 4 - 2 }
        let weight = (0..<width).map { _ in Float(random.nextUnit()) + 0.5 }
        let sources = partials.map { $0.withUnsafeBufferPointer { UnsafePointer($0.baseAddress!) } }
        var fusedResidual = residual0
        var fusedNormed = [Float](repeating: 0, count: rows * width)
        ResidualNorm.sumAddAndNormalizeEachRow(
            sources, residual: &fusedResidual, weight: weight, eps: 1e-5, rows: 0..<rows, width: width,
            into: &fusedNormed)
        var sum = [Float](repeating: 0, count: rows * width)
        ResidualNorm.sum(sources, range: 0..<rows * width, into: &sum)
        var residual = residual0
        var normed = [Float](repeating: 0, count: rows * width)
        ResidualNorm.addThenNormInTwoPasses(
            sum, residual: &residual, weight: weight, eps: 1e-5, rows: rows, width: width, into: &normed)
        #expect(fusedResidual == residual && fusedNormed == normed)
        var oneRank = residual0
        var oneRankNormed = [Float](repeating: 0, count: rows * width)
        ResidualNorm.addAndNormalizeEachRow(
            sum, residual: &oneRank, weight: weight, eps: 1e-5, rows: rows, width: width, into: &oneRankNormed)
        #expect(oneRank == residual && oneRankNormed == normed)
    }

    @Test("the epilogue's int8 packages are the normed rows quantized afterwards, byte for byte", arguments: [1, 3])
    func quantizingEpilogue(rows: Int) {
        let (width, ranks) = (96, 2)
        var random = Xoshiro256(seed: UInt64(rows))
        let partials = (0..<ranks).map { _ in (0..<rows * width).map { _ in Float(random.nextUnit()) - 0.5 } }
        let residual0 = (0..<rows * width).map { _ in Float(random.nextUnit()) * 4 - 2 }
        let weight = (0..<width).map { _ in Float(random.nextUnit()) + 0.5 }
        let sources = partials.map { $0.withUnsafeBufferPointer { UnsafePointer($0.baseAddress!) } }
        let workspace = Workspace(threads: 1)
        var residual = residual0
        let normed = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        defer { normed.deallocate() }
        let fused = QuantizedRows(for: normed, rows: rows, width: width, in: workspace, slot: .quantizedNormed)
        let after = QuantizedRows(for: normed, rows: rows, width: width, in: workspace, slot: .streamingInputs)
        let bytes = rows * fused.stride
        // Zeroed first: the gaps that align a package's sections are never written.
        memset(fused.base, 0, bytes)
        memset(after.base, 0, bytes)
        ResidualNorm.sumAddAndNormalizeEachRow(
            sources, residual: &residual, weight: weight, eps: 1e-5, rows: 0..<rows, width: width, into: normed,
            quantized: fused)
        after.quantize(rows: 0..<rows)
        #expect(memcmp(fused.base, after.base, bytes) == 0)
        // The chunked view the shared-memory strategies use writes the same packages.
        let tail = fused.rows(from: rows - 1)
        #expect(tail.rows == 1 && tail.source == UnsafePointer(normed + (rows - 1) * width))
    }

    @Test("int8 decode: the fused boundary quantizes each normed row once; logits equal the unfused path's bitwise")
    func int8Decode() throws {
        let ranks = 2
        let directory = QuantFixture(name: "hybrid-int8").directory
        let reference = try QuantFixture(name: "hybrid-int8").reference
        let tokens = try reference.ints("prompt_ids")
        // Every rank feeds the same tokens: the reference's greedy continuation.
        let continuation = Array(try reference.ints("greedy_ids").prefix(3))
        let models = try (0..<ranks).map { rank in
            try NemotronH(
                directory: directory, parallelism: Parallelism(world: Placeholder(rank: rank, size: ranks)),
                compute: ComputePolicy(prefill: .int8))
        }
        func run(fused: Bool) -> (logits: [Float], reused: Int) {
            InProcessGroup(size: ranks).run(ranks) { rank, member in
                let model = models[rank].joining(member, fused: fused)
                let sequence = model.makeSequence(capacity: 32)
                let workspace = Workspace(threads: 1)
                var logits: [Float] = []
                _ = model.forward(tokens, sequence: sequence, logits: .last, workspace: workspace)
                for next in continuation {
                    logits += model.forward([next], sequence: sequence, logits: .last, workspace: workspace).array
                }
                return (logits, workspace.reusedQuantizedRows)
            }[0]
        }
        let fused = run(fused: true)
        let unfused = run(fused: false)
        #expect(!fused.logits.isEmpty && fused.logits == unfused.logits)
        #expect(unfused.reused == 0)
        // Every decode step: the q, k and v projections of the attention layer, each block's first
        // product, the experts' up projections and the LM head read the boundary's packages.
        #expect(fused.reused >= 3 * 4, "\(fused.reused) products reused the packages")
    }

    @Test("fused and unfused forward passes are bitwise equal on an in-process group", arguments: [2, 4])
    func forward(ranks: Int) throws {
        let fixture = Fixture.all[1]
        let tokens = try fixture.reference.ints("prompt_ids")
        let models = try (0..<ranks).map { try fixture.load(tpSize: ranks, rank: $0) }
        func run(fused: Bool) -> [Float] {
            InProcessGroup(size: ranks).run(ranks) { rank, member in
                let model = models[rank].joining(member, fused: fused)
                return model.forward(
                    tokens, sequence: model.makeSequence(capacity: 16), logits: .all, workspace: Workspace(threads: 1)
                ).array
            }[0]
        }
        let fused = run(fused: true)
        let unfused = run(fused: false)
        #expect(fused == unfused)
        #expect(maxAbsDifference(fused, try fixture.reference.floats("prefill_logits")) <= 1e-4)
    }
}

extension ProcessSuites {
    /// Every strategy, fused and unfused, under real mpirun.

    @Suite("AllReduce strategies under mpirun", .serialized)
    struct AllReduceStrategyTests {
        static func sharedMemoryEntries() -> Set<String> {
            Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
        }

        func tokens(_ fixture: Fixture) throws -> String {
            try fixture.reference.ints("prompt_ids").map(String.init).joined(separator: ",")
        }

        @Test(
            "logits and greedy ids match transformers; tp 2 fused equals unfused bitwise",
            arguments: [2, 4], [AllReduceStrategy.mpi, .oneshot, .twoshot, .ring, .auto])
        func strategies(ranks: Int, strategy: AllReduceStrategy) throws {
            let before = Self.sharedMemoryEntries()
            for fixture in [Fixture.all[0], Fixture.all[1]] {
                let reference = try fixture.reference
                var logits: [String: [Float]] = [:]
                for fuse in ["on", "off"] {
                    let directory = try TemporaryDirectory()
                    let options = ["--allreduce-strategy", strategy.rawValue, "--fuse-allreduce-norm", fuse]
                    let run = try ProcessSuites.TensorParallelTests.run(
                        ranks: ranks,
                        [
                            "logits", "--model", fixture.directory.path, "--tokens", try tokens(fixture),
                            "--output", directory.file("l.safetensors").path,
                        ] + options)
                    #expect(run.status == 0, "\(run.stderr)")
                    logits[fuse] = try Reference(url: directory.file("l.safetensors")).floats("logits")
                    #expect(
                        maxAbsDifference(logits[fuse]!, try reference.floats("prefill_logits")) <= 1e-4,
                        "\(fixture) \(fuse)")
                    let expected = try reference.ints("greedy_ids")
                    let generate = try ProcessSuites.TensorParallelTests.run(
                        ranks: ranks,
                        [
                            "generate", "--model", fixture.directory.path, "--tokens",
                            try tokens(fixture), "--max-new-tokens", "\(expected.count)", "--json",
                        ] + options)
                    let json = try JSONSerialization.jsonObject(with: Data(generate.stdout.utf8)) as? [String: Any]
                    #expect(json?["generated_ids"] as? [Int] == expected, "\(fixture) \(fuse): \(generate.stderr)")
                }
                if ranks == 2 { #expect(logits["on"] == logits["off"], "\(fixture): fused and unfused differ") }
            }
            #expect(Self.sharedMemoryEntries().subtracting(before).isEmpty, "new /dev/shm entries")
        }

        @Test("a killed rank leaves nothing in /dev/shm and ends the job")
        func killedRank() throws {
            let before = Self.sharedMemoryEntries()
            let directory = try TemporaryDirectory()
            // A unique config path marks this job's processes for pkill.
            let config = directory.file("kill-\(UUID().uuidString).yaml")
            let text =
                "model: \(Fixture.all[0].directory.path)\ntokens: [1, 2, 3]\nmax_new_tokens: 1000000\n"
                + "allreduce_strategy: oneshot\n"
            try text.write(to: config, atomically: false, encoding: .utf8)
            let mpirun = Process()
            mpirun.executableURL = ProcessSuites.TensorParallelTests.mpirun
            mpirun.arguments = [
                "--allow-run-as-root", "--oversubscribe", "-np", "2", CLI.binary.path, "generate", "--config",
                config.path,
                "--threads", "1",
            ]
            mpirun.environment = CLI.cleanEnvironment
            mpirun.standardOutput = FileHandle.nullDevice
            mpirun.standardError = FileHandle.nullDevice
            try mpirun.run()
            // Ranks' command lines start with the binary (mpirun's with mpirun): wait for both,
            // then kill the newest rank.
            let rankPattern =
                "^" + NSRegularExpression.escapedPattern(for: CLI.binary.path) + " generate --config " + config.path
            func ranksRunning() throws -> Int {
                let pgrep = Process()
                pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
                pgrep.arguments = ["-c", "-f", rankPattern]
                let pipe = Pipe()
                pgrep.standardOutput = pipe
                try pgrep.run()
                pgrep.waitUntilExit()
                return Int(
                    String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            }
            let started = Date()
            while try ranksRunning() < 2 && Date().timeIntervalSince(started) < 60 { usleep(100_000) }
            Thread.sleep(forTimeInterval: 1)
            let kill = Process()
            kill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
            kill.arguments = ["-9", "-n", "-f", rankPattern]
            try kill.run()
            kill.waitUntilExit()
            #expect(kill.terminationStatus == 0, "a rank was found and killed")
            let deadline = Date().addingTimeInterval(30)
            while mpirun.isRunning && Date() < deadline { usleep(50_000) }
            if mpirun.isRunning { mpirun.terminate() }
            mpirun.waitUntilExit()
            #expect(mpirun.terminationStatus != 0)
            #expect(Self.sharedMemoryEntries().subtracting(before).isEmpty, "new /dev/shm entries")
        }
    }
}
