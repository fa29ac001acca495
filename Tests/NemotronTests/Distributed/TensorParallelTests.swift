import Foundation
import Testing

@testable import Nemotron

extension ProcessSuites {
    /// Real MPI: spawns `mpirun` on the built nemotron-run and compares with the transformers
    /// references. Tensor parallelism changes summation order, so the tolerance stays 1e-4.

    @Suite("Tensor parallelism under mpirun", .serialized)
    struct TensorParallelTests {
        static let mpirun = URL(fileURLWithPath: "/usr/bin/mpirun")

        /// `mpirun -np N nemotron-run ARGS --threads 1` as root-safe, oversubscribed on small machines.
        static func run(ranks: Int, _ arguments: [String], timeout: TimeInterval = 120) throws -> CLI.Output {
            try CLI.run(
                ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", CLI.binary.path] + arguments + [
                    "--threads", "1",
                ],
                executable: mpirun, timeout: timeout)
        }

        func tokens(_ fixture: Fixture) throws -> String {
            try fixture.reference.ints("prompt_ids").map(String.init).joined(separator: ",")
        }

        /// dense at tp 4 also covers KV-head replication (2 kv heads) and B/C-group replication (2 groups).
        @Test(
            "logits and greedy generation match transformers", arguments: [2, 4],
            [Fixture.all[0], Fixture.all[1], Fixture.all[2]])
        func matchesReference(ranks: Int, fixture: Fixture) throws {
            let directory = try TemporaryDirectory()
            let reference = try fixture.reference
            let logits = try Self.run(
                ranks: ranks,
                [
                    "logits", "--model", fixture.directory.path, "--tokens", try tokens(fixture),
                    "--output", directory.file("l.safetensors").path,
                ])
            #expect(logits.status == 0, "\(logits.stderr)")
            #expect(
                maxAbsDifference(
                    try Reference(url: directory.file("l.safetensors")).floats("logits"),
                    try reference.floats("prefill_logits")) <= 1e-4)

            let expected = try reference.ints("greedy_ids")
            let generate = try Self.run(
                ranks: ranks,
                [
                    "generate", "--model", fixture.directory.path, "--tokens", try tokens(fixture),
                    "--max-new-tokens", "\(expected.count)", "--json",
                    "--logits-output", directory.file("s.safetensors").path,
                ])
            #expect(generate.status == 0, "\(generate.stderr)")
            let lines = generate.stdout.split(separator: "\n")
            #expect(lines.count == 1, "only rank 0 prints")
            let json = try #require(
                try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any])
            #expect(json["generated_ids"] as? [Int] == expected)
            #expect(
                maxAbsDifference(
                    try Reference(url: directory.file("s.safetensors")).floats("step_logits"),
                    try reference.floats("step_logits")) <= 1e-4)
        }

        /// A copy of the dense fixture whose config.json is changed; the shard plan is checked
        /// before any weight is read, so the weights need not match.
        func dense(changing changes: [String: Any], in directory: TemporaryDirectory) throws -> URL {
            let copy = try directory.copy(Fixture.all[0])
            let url = copy.appendingPathComponent("config.json")
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            for (key, value) in changes { json[key] = value }
            try JSONSerialization.data(withJSONObject: json).write(to: url)
            return copy
        }

        @Test(
            "illegal sizes fail on every rank with one message from rank 0",
            arguments: [
                (
                    3, [String: Int](),
                    "mamba_num_heads (16) must be divisible by it; legal sizes for this model: 1, 2, 4, 8"
                ),
                (
                    2, ["mamba_num_heads": 12, "n_groups": 3],
                    "n_groups (3) must divide it or be divisible by it; legal sizes for this model: 1"
                ),
                (
                    2, ["num_attention_heads": 12, "num_key_value_heads": 3],
                    "num_key_value_heads (3) must divide it or be divisible by it"
                ),
            ])
        func illegalSizes(ranks: Int, changes: [String: Int], message: String) throws {
            let directory = try TemporaryDirectory()
            let model = try dense(changing: changes, in: directory)
            let start = Date()
            let run = try Self.run(ranks: ranks, ["generate", "--model", model.path, "--tokens", "1,2"], timeout: 30)
            #expect(run.status != 0)
            #expect(Date().timeIntervalSince(start) < 15)
            #expect(
                run.stderr.contains("error: tensor-parallel size \(ranks) does not fit this model: \(message)"),
                "\(run.stderr)")
            #expect(run.stderr.components(separatedBy: "error: ").count == 2, "one message: \(run.stderr)")
            #expect(run.stdout.isEmpty)
        }

        @Test("tensor_parallel_size must match the number of processes")
        func declaredSize() throws {
            let directory = try TemporaryDirectory()
            let config = directory.file("run.yaml")
            try "model: \(Fixture.all[0].directory.path)\ntensor_parallel_size: 4\ntokens: [1, 2]\n".write(
                to: config, atomically: false, encoding: .utf8)
            let run = try Self.run(ranks: 2, ["generate", "--config", config.path], timeout: 30)
            #expect(run.status != 0)
            #expect(
                run.stderr.contains("error: tensor_parallel_size is 4 but 2 process(es) are running"), "\(run.stderr)")
        }

        @Test("a missing shard ends every rank with the file named")
        func missingShard() throws {
            let directory = try TemporaryDirectory()
            let copy = try directory.copy(Fixture.all[1])
            try FileManager.default.removeItem(at: copy.appendingPathComponent("model-00002-of-00003.safetensors"))
            let run = try Self.run(ranks: 2, ["generate", "--model", copy.path, "--tokens", "1"], timeout: 30)
            #expect(run.status != 0)
            #expect(run.stderr.contains("model-00002-of-00003.safetensors: not found"), "\(run.stderr)")
        }

        @Test("inspect prints every rank's plan")
        func inspect() throws {
            let run = try Self.run(ranks: 4, ["inspect", "--model", Fixture.all[1].directory.path])
            #expect(run.status == 0, "\(run.stderr)")
            for rank in 0..<4 { #expect(run.stdout.contains("rank \(rank) of 4: weights held")) }
            #expect(run.stdout.contains("kv heads 0..<1 of 2 (replicated on 2 ranks)"))
            #expect(run.stdout.contains("(replicated: 2 ranks per group, gated-norm sums reduced)"))
            #expect(run.stdout.contains("every expert's width 8..<16 of 32"))
        }
    }
}

@Suite("ShardPlan")
struct ShardPlanTests {
    @Test("parts cover the range contiguously and evenly", arguments: [1, 2, 3, 4, 7])
    func parts(count: Int) {
        for total in [0, 5, 16, 129] {
            let parts = (0..<count).map { Partition.part(total, count, $0) }
            #expect(parts.first?.lowerBound == 0 && parts.last?.upperBound == total)
            #expect(zip(parts, parts.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            #expect((parts.map(\.count).max() ?? 0) - (parts.map(\.count).min() ?? 0) <= 1)
        }
    }

    @Test("replication when tp exceeds groups and kv heads")
    func replication() throws {
        let config = try ModelConfig(directory: Fixture.all[0].directory)
        #expect(ShardPlan.legalSizes(config: config) == [1, 2, 4, 8])
        let plan = try ShardPlan(config: config, layout: .tensorParallel(size: 4, rank: 3))
        #expect(plan.replicatesMambaGroups && plan.mambaGroupRange == 1..<2 && plan.mambaHeadRange == 12..<16)
        #expect(plan.replicatesKVHeads && plan.kvHeadRange == 1..<2 && plan.qHeadRange == 6..<8)
        let split = try ShardPlan(config: config, layout: .tensorParallel(size: 2, rank: 1))
        #expect(!split.replicatesMambaGroups && split.mambaGroupRange == 1..<2 && split.kvHeadRange == 1..<2)
    }

    @Test("attention data parallelism keeps layers whole and splits the experts")
    func attentionDataParallel() throws {
        let config = try ModelConfig(directory: Fixture.all[1].directory)
        let plan = try ShardPlan(config: config, layout: .attentionDataParallel(size: 4, rank: 3))
        #expect(plan.tpSize == 1 && plan.layout.expertSize == 4 && plan.expertRange == 6..<8)
        #expect(plan.mambaHeadRange == 0..<16 && plan.kvHeadRange == 0..<2 && plan.vocabRange == 0..<512)
        #expect(throws: NemotronError.self) {
            try ShardPlan(config: config, layout: .attentionDataParallel(size: 3, rank: 0))
        }
        #expect(try ShardPlan(config: config, layout: .tensorParallel(size: 2, rank: 1)).expertRange == 0..<8)
    }

    @Test("a failure on one rank is reported by rank 0 and ends every rank")
    func agreement() {
        let group = InProcessGroup(size: 3)
        let outcomes = group.run(3) { rank, member -> String in
            do {
                let value = try member.agreeing { () throws -> Int in
                    if rank == 1 { throw NemotronError.invalidTokens(reason: "rank one is broken") }
                    return rank
                }
                return "ok \(value)"
            } catch { return "\(error)" }
        }
        #expect(
            outcomes == ["rank 1: invalid tokens: rank one is broken", "another rank failed", "another rank failed"])
        let fine = InProcessGroup(size: 2).run(2) { rank, member in (try? member.agreeing { rank * 10 }) ?? -1 }
        #expect(fine == [0, 10])
    }

    /// Mixers return partial sums: summing the per-rank logits contributions is what the
    /// reductions do, so per-rank models built in one process must reproduce the whole model.
    @Test("per-rank partial outputs sum to the single-process output", arguments: [2, 4])
    func partialSums(tpSize: Int) throws {
        let fixture = Fixture.all[1]
        let tokens = try fixture.reference.ints("prompt_ids")
        let single = try fixture.load()
        let ranks = try (0..<tpSize).map { try fixture.load(tpSize: tpSize, rank: $0) }
        let communicator = InProcessGroup(size: tpSize)
        let logits = communicator.run(ranks.count) { rank, member in
            let model = ranks[rank].joining(member)
            return model.forward(
                tokens, sequence: model.makeSequence(capacity: 16), logits: .all, workspace: Workspace(threads: 1)
            ).array
        }
        let expected = single.forward(
            tokens, sequence: single.makeSequence(capacity: 16), logits: .all, workspace: Workspace(threads: 1)
        ).array
        #expect(maxAbsDifference(logits[0], expected) <= 1e-4)
    }
}
