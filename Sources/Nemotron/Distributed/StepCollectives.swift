/// The collectives of the scheduler, by name, each issued at one point of a step
/// (`Scheduler.step`) so every rank issues them in the same order:
///
///     anyRankBusy          attention DP with MoE layers, at the start of every step: whether any rank
///                          still has work (all ranks then run one forward pass, possibly empty)
///     broadcastDecisions   tensor parallel, after a pass that completes prompts or decodes: rank 0's
///                          tokens and finish reasons to every rank
///     gatherGenerations    attention DP, once at the end: each rank's finished requests to rank 0
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
}
