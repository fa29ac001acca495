/// Every per-rank size and range for tensor parallelism, built once from (config, tpSize, rank)
/// and validated before any weight is read. Loaders, mixers and caches take sizes only from here.
///
/// Split rules (spec §5): Mamba heads contiguous per rank, B/C groups local when tp divides
/// n_groups and replicated when n_groups divides tp; attention q heads contiguous, KV heads split
/// or replicated; MLP / expert / shared-expert widths split contiguously; vocabulary split
/// contiguously for the LM head.
public struct ShardPlan: Sendable, Equatable {
    /// Ranks a layer is split over: the world size, or 1 under attention data parallelism.
    public let tpSize: Int
    public let rank: Int
    public let worldSize: Int
    /// Attention data parallelism: every layer whole on every rank, except the routed experts,
    /// which are divided between the ranks (expert parallelism).
    public let attentionDataParallel: Bool
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

    public var localMambaHeads: Int { mambaHeadRange.count }
    public var localMambaGroups: Int { mambaGroupRange.count }
    public var localHeads: Int { qHeadRange.count }
    public var localKVHeads: Int { kvHeadRange.count }
    /// True when several ranks share one B/C group, so the gated norm's per-group sum of
    /// squares must be summed across them.
    public let replicatesMambaGroups: Bool
    public let replicatesKVHeads: Bool

    /// `worldSize` ranks, this one `rank`.
    public init(config: ModelConfig, tpSize worldSize: Int, rank worldRank: Int, attentionDataParallel: Bool = false) throws {
        precondition((0..<worldSize).contains(worldRank), "rank \(worldRank) outside 0..<\(worldSize)")
        self.worldSize = worldSize
        self.attentionDataParallel = attentionDataParallel
        if attentionDataParallel && config.has(.moe) && config.numExperts % worldSize != 0 {
            let legal = (1...config.numExperts).filter { config.numExperts % $0 == 0 }
            throw NemotronError.parallel(reason: "attention data parallelism over \(worldSize) ranks divides the routed experts between them: "
                + "n_routed_experts (\(config.numExperts)) must be divisible by it; legal process counts: \(legal.map(String.init).joined(separator: ", "))")
        }
        expertRange = attentionDataParallel ? Self.part(config.numExperts, worldSize, worldRank) : 0..<config.numExperts
        let tpSize = attentionDataParallel ? 1 : worldSize, rank = attentionDataParallel ? 0 : worldRank
        if let problem = Self.problem(config: config, tpSize: tpSize) {
            let legal = Self.legalSizes(config: config)
            throw NemotronError.parallel(reason: "tensor-parallel size \(tpSize) does not fit this model: \(problem); "
                + "legal sizes for this model: \(legal.map(String.init).joined(separator: ", "))")
        }
        self.tpSize = tpSize
        self.rank = rank
        let c = config
        mambaHeadRange = Self.part(c.mambaHeads, tpSize, rank)
        replicatesMambaGroups = c.has(.mamba) && tpSize > c.mambaGroups
        mambaGroupRange = Self.splitOrReplicate(c.mambaGroups, tpSize, rank)
        qHeadRange = Self.part(c.numHeads, tpSize, rank)
        replicatesKVHeads = c.has(.attention) && tpSize > c.numKVHeads
        kvHeadRange = Self.splitOrReplicate(c.numKVHeads, tpSize, rank)
        ffnRange = Self.part(c.ffnSize, tpSize, rank)
        moeFFNRange = Self.part(c.moeFFNSize, tpSize, rank)
        sharedFFNRange = Self.part(c.sharedExpertFFNSize, tpSize, rank)
        vocabRange = Self.part(c.vocabSize, tpSize, rank)
    }

    /// One line per concern for `inspect`: what this rank holds of `config`'s global sizes.
    public func summary(for c: ModelConfig) -> [String] {
        func r(_ range: Range<Int>, _ total: Int) -> String { "\(range.lowerBound)..<\(range.upperBound) of \(total)" }
        if attentionDataParallel {
            return ["attention data parallel: every layer whole on this rank, no per-layer collective",
                    "routed experts \(r(expertRange, c.numExperts)) (expert parallel: tokens all-gathered before the experts, "
                    + "outputs reduce-scattered back)"]
        }
        var lines: [String] = []
        if c.has(.mamba) {
            lines.append("mamba heads \(r(mambaHeadRange, c.mambaHeads)), B/C groups \(r(mambaGroupRange, c.mambaGroups))"
                + (replicatesMambaGroups ? " (replicated: \(tpSize / c.mambaGroups) ranks per group, gated-norm sums reduced)" : ""))
        }
        if c.has(.attention) {
            lines.append("q heads \(r(qHeadRange, c.numHeads)), kv heads \(r(kvHeadRange, c.numKVHeads))"
                + (replicatesKVHeads ? " (replicated on \(tpSize / c.numKVHeads) ranks)" : ""))
        }
        if c.has(.mlp) { lines.append("mlp width \(r(ffnRange, c.ffnSize))") }
        if c.has(.moe) {
            lines.append("every expert's width \(r(moeFFNRange, c.moeFFNSize)), shared expert \(r(sharedFFNRange, c.sharedExpertFFNSize)); "
                + "router" + (c.moeLatentSize != nil ? " and latent projections" : "") + " replicated")
        }
        lines.append("lm head vocab rows \(r(vocabRange, c.vocabSize)); embedding replicated (memory-mapped: only looked-up rows are paged in)")
        return lines
    }

    /// Contiguous near-equal part `index` of `count` items split `parts` ways.
    public static func part(_ count: Int, _ parts: Int, _ index: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let start = index * base + min(index, extra)
        return start..<start + base + (index < extra ? 1 : 0)
    }

    /// Contiguous parts when `count` ≥ `parts`; otherwise (`parts` a multiple of `count`) each
    /// item is replicated on `parts / count` consecutive ranks and rank `index` holds one.
    static func splitOrReplicate(_ count: Int, _ parts: Int, _ index: Int) -> Range<Int> {
        guard parts > count, count > 0 else { return part(count, parts, index) }
        let item = index / (parts / count)
        return item..<item + 1
    }

    /// Why `tpSize` cannot shard this model, or nil when it can.
    static func problem(config c: ModelConfig, tpSize tp: Int) -> String? {
        if tp < 1 { return "it must be at least 1" }
        if c.has(.mamba) {
            if c.mambaHeads % tp != 0 { return "mamba_num_heads (\(c.mambaHeads)) must be divisible by it" }
            if c.mambaGroups % tp != 0 && tp % c.mambaGroups != 0 {
                return "n_groups (\(c.mambaGroups)) must divide it or be divisible by it"
            }
        }
        if c.has(.attention) {
            if c.numHeads % tp != 0 { return "num_attention_heads (\(c.numHeads)) must be divisible by it" }
            if c.numKVHeads % tp != 0 && tp % c.numKVHeads != 0 {
                return "num_key_value_heads (\(c.numKVHeads)) must divide it or be divisible by it"
            }
        }
        if c.has(.mlp) && c.ffnSize < tp { return "intermediate_size (\(c.ffnSize)) is smaller than it" }
        if c.has(.moe) && c.moeFFNSize < tp { return "moe_intermediate_size (\(c.moeFFNSize)) is smaller than it" }
        if c.vocabSize < tp { return "vocab_size (\(c.vocabSize)) is smaller than it" }
        return nil
    }

    /// Every legal tensor-parallel size up to 64.
    public static func legalSizes(config: ModelConfig) -> [Int] {
        (1...64).filter { problem(config: config, tpSize: $0) == nil }
    }
}
