/// The collectives of the scheduler, by name, each issued at one point of a step
/// (`Scheduler.step`) so every rank issues them in the same order:
///
///     anyRankBusy          attention DP with MoE layers, at the start of every step: whether any rank
///                          still has work (all ranks then run one forward pass, possibly empty)
///     broadcastDecisions   tensor parallel, after a pass that completes prompts or decodes: rank 0's
///                          tokens and finish reasons to every rank
///     gatherGenerations    attention DP, once at the end: each rank's finished requests to rank 0
///     gatherEvents         attention DP under `serve`, after every step: each rank's events to rank 0
///                          (`GenerationRecord.encode(events:)`), which streams them
///
/// A perplexity evaluation (`PerplexityEvaluator`) issues, per window pass, `gatherRowScores`
/// (tensor group) and, once at the end under attention DP, `gatherScoreTotals` (world).
///
/// Under tensor parallelism every forward pass also issues `ForwardCollectives`.
struct StepCollectives {
    let parallelism: Parallelism

    /// Whether any rank still has work (world-wide maximum of a flag).
    func anyRankBusy(_ busy: Bool) -> Bool {
        parallelism.world.allReduceMax(busy ? 1 : 0) > 0
    }

    /// Rank 0's decisions copied to every rank of the tensor group: ids, then finish reasons
    /// (0: still running, else 1 + the index in `FinishReason.allCases`).
    func broadcastDecisions(_ decisions: inout [(id: Int, reason: FinishReason?)]) {
        let group = parallelism.tensorGroup
        let n = decisions.count
        guard group.size > 1, n > 0 else { return }
        var message = [Int32](repeating: 0, count: 2 * n)
        if group.isRoot {
            for (k, decision) in decisions.enumerated() {
                message[k] = Int32(decision.id)
                message[n + k] = Int32(decision.reason.map { FinishReason.allCases.firstIndex(of: $0)! + 1 } ?? 0)
            }
        }
        message.withUnsafeMutableBufferPointer { group.broadcast($0.baseAddress!, count: $0.count, root: 0) }
        decisions = (0..<n).map { k in
            (Int(message[k]), message[n + k] > 0 ? FinishReason.allCases[Int(message[n + k]) - 1] : nil)
        }
    }

    /// Every rank's finished requests on rank 0, in request order (other ranks get none).
    func gatherGenerations(_ mine: [Int: Generation]) -> [Int: Generation] {
        let local = GenerationRecord.encode(mine.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        let all = parallelism.world.gather(bytes: local, root: 0)
        guard parallelism.world.isRoot else { return [:] }
        var gathered: [Int: Generation] = [:]
        for bytes in all {
            for record in GenerationRecord.decode(bytes) { gathered[record.request] = record.generation }
        }
        return gathered
    }

    /// Every rank's events of one step on rank 0, in rank order (other ranks get none).
    func gatherEvents(_ mine: [GenerationEvent]) -> [GenerationEvent] {
        let all = parallelism.world.gather(bytes: GenerationRecord.encode(events: mine), root: 0)
        return all.flatMap { GenerationRecord.decode(events: $0) }
    }

    /// Each rank's per-token numbers (log-sum-exp and target logit over its vocabulary rows)
    /// on rank 0 of the tensor group, in rank order; other ranks get none.
    func gatherRowScores(_ local: [Double]) -> [[Double]] {
        Self.gather(local, in: parallelism.tensorGroup)
    }

    /// Each rank's evaluation totals on rank 0 of the world, in rank order; other ranks get none.
    func gatherScoreTotals(_ local: [Double]) -> [[Double]] {
        Self.gather(local, in: parallelism.world)
    }

    /// Doubles from every rank of `group` on its rank 0, as their bit patterns (exact).
    private static func gather(_ values: [Double], in group: Communicator) -> [[Double]] {
        guard group.size > 1 else { return [values] }
        let bytes = values.withUnsafeBytes { Array($0) }
        guard group.isRoot else {
            _ = group.gather(bytes: bytes, root: 0)
            return []
        }
        return group.gather(bytes: bytes, root: 0).map { rank in
            rank.withUnsafeBytes { raw in
                (0..<raw.count / 8).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
            }
        }
    }
}
