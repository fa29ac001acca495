/// Moves MoE tokens between ranks under attention data parallelism, where each rank serves
/// its own requests but holds only some of the routed experts: before the experts, every
/// rank's routed inputs and routing go to all ranks (all-gather, ranks may hold different
/// token counts, zero included); after, each rank's rows of the expert outputs, summed over
/// the ranks whose experts produced them, go back to it (reduce-scatter). Supplied by the
/// model's forward pass, which owns the collectives; the MoE mixer only hands it data.
struct ExpertExchange {
    let communicator: Communicator

    /// Every rank's token count, in rank order.
    func tokenCounts(_ local: Int) -> [Int] { communicator.allGather(local) }

    /// Concatenates every rank's `[T_r, width]` rows into `output` (`[ΣT, width]`).
    func gather(_ rows: UnsafePointer<Float>, width: Int, counts: [Int], into output: UnsafeMutablePointer<Float>) {
        communicator.allGather(rows, into: output, counts: counts.map { $0 * width })
    }

    /// Sums `[ΣT, width]` over the ranks and leaves this rank's `[T_r, width]` rows in `output`.
    func scatterBack(_ rows: UnsafePointer<Float>, width: Int, counts: [Int], into output: UnsafeMutablePointer<Float>) {
        communicator.reduceScatter(rows, into: output, counts: counts.map { $0 * width })
    }
}
