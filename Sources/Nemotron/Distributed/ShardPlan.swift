/// Every per-rank size and range for tensor parallelism, built once from (config, layout) and
/// validated before any weight is read. Loaders, mixers and caches take sizes only from here.
///
/// Split rules (docs/architecture.md, "Sharding"): Mamba heads contiguous per rank, B/C groups
/// local when tp divides n_groups and replicated when n_groups divides tp; attention q heads
/// contiguous, KV heads split or replicated; MLP / expert / shared-expert widths split
/// contiguously; vocabulary split contiguously for the LM head. Under attention data
/// parallelism the tensor-parallel size is 1 and whole routed experts are divided instead.
///
/// `alignment` is the block size of the weight format along the input dimension: every
/// column range a rank keeps (o_proj, out_proj and down_proj inputs) starts and ends on a block
/// boundary, and a size that would cut a block is refused by name.
public struct ShardPlan: Sendable, Equatable {
    public let layout: ParallelLayout
    /// Ranks a layer is split over.
    public var tpSize: Int { layout.tensorSize }
    public var rank: Int { layout.tensorRank }
    /// Routed experts this rank holds (all of them, width-split, under tensor parallelism).
    public let expertRange: Range<Int>

    public let mambaHeadRange: Range<Int>
    /// Groups whose B/C rows and conv channels this rank holds (one replicated group when tp > G).
    public let mambaGroupRange: Range<Int>
    public let qHeadRange: Range<Int>
    public let kvHeadRange: Range<Int>
    public let ffnRange: Range<Int>
    public let moeFFNRange: Range<Int>
    public let sharedFFNRange: Range<Int>
    public let vocabRange: Range<Int>

    public var localHeads: Int { qHeadRange.count }
    public var localKVHeads: Int { kvHeadRange.count }
    /// True when several ranks share one B/C group, so the gated norm's per-group sum of
    /// squares must be summed across them.
    public let replicatesMambaGroups: Bool
    public let replicatesKVHeads: Bool
    /// The weight block size column cuts respect (1 for float weights).
    public let alignment: Int

    public init(config c: ModelConfig, layout: ParallelLayout, alignment: Int = 1) throws {
        self.layout = layout
        self.alignment = alignment
        let experts = layout.expertSize
        if experts > 1 && c.has(.moe) && c.numExperts % experts != 0 {
            let legal = (1...c.numExperts).filter { c.numExperts % $0 == 0 }
            throw NemotronError.parallel(
                reason: "attention data parallelism over \(experts) ranks divides the routed experts between them: "
                    + "n_routed_experts (\(c.numExperts)) must be divisible by it; legal process counts: "
                    + "\(legal.map(String.init).joined(separator: ", "))"
            )
        }
        expertRange = Partition.part(c.numExperts, experts, layout.expertRank)
        let (tp, rank) = (layout.tensorSize, layout.tensorRank)
        if let problem = Self.problem(config: c, tpSize: tp, alignment: alignment) {
            let legal = Self.legalSizes(config: c, alignment: alignment)
            throw NemotronError.parallel(
                reason: "tensor-parallel size \(tp) does not fit this model: \(problem); "
                    + "legal sizes for this model: \(legal.map(String.init).joined(separator: ", "))")
        }
        mambaHeadRange = Partition.part(c.mambaHeads, tp, rank)
        replicatesMambaGroups = c.has(.mamba) && tp > c.mambaGroups
        mambaGroupRange = Partition.splitOrReplicate(c.mambaGroups, tp, rank)
        qHeadRange = Partition.part(c.numHeads, tp, rank)
        replicatesKVHeads = c.has(.attention) && tp > c.numKVHeads
        kvHeadRange = Partition.splitOrReplicate(c.numKVHeads, tp, rank)
        ffnRange = Self.widthPart(c.ffnSize, tp, rank, alignment)
        moeFFNRange = Self.widthPart(c.moeFFNSize, tp, rank, alignment)
        sharedFFNRange = Self.widthPart(c.sharedExpertFFNSize, tp, rank, alignment)
        vocabRange = Partition.part(c.vocabSize, tp, rank)
    }

    /// An intermediate width split into whole blocks (a width of 0, for an absent layer kind, stays empty).
    private static func widthPart(_ width: Int, _ parts: Int, _ index: Int, _ alignment: Int) -> Range<Int> {
        width % alignment == 0
            ? Partition.part(width, parts, index, alignment: alignment) : Partition.part(width, parts, index)
    }

    /// One line per concern for `inspect`: what this rank holds of `config`'s global sizes.
    public func summary(for c: ModelConfig) -> [String] {
        func r(_ range: Range<Int>, _ total: Int) -> String { "\(range.lowerBound)..<\(range.upperBound) of \(total)" }
        if layout.expertSize > 1 {
            return [
                "attention data parallel: every layer whole on this rank, no per-layer collective",
                "routed experts \(r(expertRange, c.numExperts)) (expert parallel: tokens all-gathered before the "
                    + "experts, "
                    + "outputs reduce-scattered back)",
            ]
        }
        var lines: [String] = []
        if c.has(.mamba) {
            lines.append(
                "mamba heads \(r(mambaHeadRange, c.mambaHeads)), B/C groups \(r(mambaGroupRange, c.mambaGroups))"
                    + (replicatesMambaGroups
                        ? " (replicated: \(tpSize / c.mambaGroups) ranks per group, gated-norm sums reduced)" : ""))
        }
        if c.has(.attention) {
            lines.append(
                "q heads \(r(qHeadRange, c.numHeads)), kv heads \(r(kvHeadRange, c.numKVHeads))"
                    + (replicatesKVHeads ? " (replicated on \(tpSize / c.numKVHeads) ranks)" : ""))
        }
        if c.has(.mlp) { lines.append("mlp width \(r(ffnRange, c.ffnSize))") }
        if c.has(.moe) {
            lines.append(
                "every expert's width \(r(moeFFNRange, c.moeFFNSize)), shared expert "
                    + "\(r(sharedFFNRange, c.sharedExpertFFNSize)); "
                    + "router" + (c.moeLatentSize != nil ? " and latent projections" : "") + " replicated")
        }
        lines.append(
            "lm head vocab rows \(r(vocabRange, c.vocabSize)); embedding replicated (memory-mapped: only looked-up "
                + "rows are paged in)"
        )
        return lines
    }

    /// Why `tpSize` cannot shard this model with column blocks of `alignment`, or nil when it can.
    static func problem(config c: ModelConfig, tpSize tp: Int, alignment: Int = 1) -> String? {
        if tp < 1 { return "it must be at least 1" }
        if c.has(.mamba) {
            if c.mambaHeads % tp != 0 { return "mamba_num_heads (\(c.mambaHeads)) must be divisible by it" }
            if c.mambaGroups % tp != 0 && tp % c.mambaGroups != 0 {
                return "n_groups (\(c.mambaGroups)) must divide it or be divisible by it"
            }
            if (c.mambaHeads / tp * c.mambaHeadDim) % alignment != 0 {
                return
                    "each rank's out_proj inputs (\(c.mambaHeads / tp) heads × \(c.mambaHeadDim)) would cut a weight "
                    + "block of \(alignment)"
            }
        }
        if c.has(.attention) {
            if c.numHeads % tp != 0 { return "num_attention_heads (\(c.numHeads)) must be divisible by it" }
            if c.numKVHeads % tp != 0 && tp % c.numKVHeads != 0 {
                return "num_key_value_heads (\(c.numKVHeads)) must divide it or be divisible by it"
            }
            if (c.numHeads / tp * c.headDim) % alignment != 0 {
                return
                    "each rank's o_proj inputs (\(c.numHeads / tp) heads × \(c.headDim)) would cut a weight block of "
                    + "\(alignment)"
            }
        }
        for (present, width, key) in [
            (c.has(.mlp), c.ffnSize, "intermediate_size"), (c.has(.moe), c.moeFFNSize, "moe_intermediate_size"),
            (c.has(.moe), c.sharedExpertFFNSize, "moe_shared_expert_intermediate_size"),
        ] where present {
            if width % alignment != 0 {
                return "\(key) (\(width)) is not a whole number of weight blocks of \(alignment)"
            }
            if width / alignment < tp {
                return "\(key) (\(width)) has fewer than one weight block of \(alignment) per rank"
            }
        }
        if c.vocabSize < tp { return "vocab_size (\(c.vocabSize)) is smaller than it" }
        return nil
    }

    /// Every legal tensor-parallel size up to 64.
    public static func legalSizes(config: ModelConfig, alignment: Int = 1) -> [Int] {
        (1...64).filter { problem(config: config, tpSize: $0, alignment: alignment) == nil }
    }
}
