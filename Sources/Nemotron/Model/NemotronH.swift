import Foundation

/// The Nemotron-H model on one rank: embedding, blocks, final norm and this rank's rows of the
/// LM head. `forward` is the whole recipe (spec §3.1).
public final class NemotronH {
    public let config: ModelConfig
    public let plan: ShardPlan
    /// Keeps the memory-mapped weights alive.
    public let checkpoint: Checkpoint
    let blocks: [Block]
    /// `[V, H]`, replicated: a lookup reads H values per token, so splitting it saves no work.
    let embeddings: WeightMatrix
    /// `[H]`
    let normF: [Float]
    /// `[V_local, H]` this rank's vocabulary rows.
    let lmHead: WeightMatrix

    /// `progress(done, total)` is called as blocks load.
    public init(checkpoint: Checkpoint, config: ModelConfig, plan: ShardPlan, progress: (Int, Int) -> Void = { _, _ in }) throws {
        self.config = config
        self.plan = plan
        self.checkpoint = checkpoint
        let (V, H) = (config.vocabSize, config.hiddenSize)
        embeddings = try checkpoint.matrix(WeightNames.embeddings, rows: V, cols: H)
        blocks = try config.layerKinds.enumerated().map { index, kind in
            defer { progress(index + 1, config.numLayers) }
            return try Block(index: index, kind: kind, config: config, plan: plan, checkpoint: checkpoint)
        }
        normF = try checkpoint.vector(WeightNames.normF, count: H)
        let headName = config.tieWordEmbeddings ? WeightNames.embeddings : WeightNames.lmHead
        lmHead = try checkpoint.matrix(headName, rows: V, cols: H, rowSegments: [plan.vocabRange])
    }

    /// Loads `config.json` and the weights of this rank from a checkpoint directory.
    public convenience init(directory: URL, tpSize: Int = 1, rank: Int = 0, attentionDataParallel: Bool = false,
                            progress: (Int, Int) -> Void = { _, _ in }) throws {
        let config = try ModelConfig(directory: directory)
        let plan = try ShardPlan(config: config, tpSize: tpSize, rank: rank, attentionDataParallel: attentionDataParallel)
        try self.init(checkpoint: try Checkpoint(directory: directory), config: config, plan: plan, progress: progress)
    }

    /// Fresh state for one sequence; `capacity` sizes the KV caches (they grow if exceeded).
    public func makeSequence(capacity: Int) -> SequenceState {
        SequenceState(layers: blocks.map { $0.mixer.makeState(capacity: capacity) })
    }

    /// Which positions of a forward pass need logits.
    public enum LogitRows {
        case all
        case last
    }

    /// Runs `tokens` of one sequence through the model, advancing its state. Returns the logits
    /// `[rows, V]` (rows = all tokens or the last one) on rank 0; other ranks get an empty array.
    /// `fused` selects the layer-shifted AllReduce + residual + RMSNorm (spec §6).
    public func forward(_ tokens: [Int], sequence: SequenceState, logits rows: LogitRows, workspace ws: Workspace,
                        communicator comm: Communicator, fused: Bool = false) -> [Float] {
        forward([(tokens, sequence)], logits: rows, workspace: ws, communicator: comm, fused: fused)
    }

    /// Runs several sequences in one pass: their tokens are stacked into one `[ΣT, H]` batch,
    /// so every matrix product serves them all, while conv, scan and attention run on each
    /// sequence's own state. Returns logits on rank 0: every row (`.all`), or each sequence's
    /// last row in batch order (`.last`).
    public func forward(_ batch: [(tokens: [Int], sequence: SequenceState)], logits rows: LogitRows, workspace ws: Workspace,
                        communicator world: Communicator, fused: Bool = false) -> [Float] {
        // Attention data parallel: layers are whole on every rank, so nothing is reduced or
        // gathered; only MoE layers exchange tokens with the other ranks.
        let comm: Communicator = plan.attentionDataParallel ? SingleProcess() : world
        let exchange = plan.attentionDataParallel ? ExpertExchange(communicator: world) : nil
        let tokens = batch.flatMap(\.tokens)
        var ranges: [Range<Int>] = []
        for item in batch { ranges.append((ranges.last?.upperBound ?? 0)..<(ranges.last?.upperBound ?? 0) + item.tokens.count) }
        let (T, H, eps) = (tokens.count, config.hiddenSize, config.normEps)
        let hidden = ws.buffer(.hidden, count: T * H)
        let residual = ws.buffer(.residual, count: T * H)
        let normed = ws.buffer(.normed, count: T * H)
        for (t, token) in tokens.enumerated() { embeddings.row(token, into: hidden + t * H) }

        for block in blocks {
            if block.index == 0 {
                // The embedding is complete on every rank: layer 0 has no pre-allreduce.
                residual.update(from: hidden, count: T * H)
                RMSNorm.apply(residual, weight: block.norm, eps: eps, tokens: T, width: H, into: normed)
            } else {
                BlockBoundary.enter(hidden, residual: residual, norm: block.norm, eps: eps, tokens: T, width: H, into: normed,
                                    fused: fused, communicator: comm)
            }
            let segments = zip(ranges, batch).map { Segment(rows: $0, state: $1.sequence.layers[block.index]) }
            block.mixer.forward(normed, segments: segments, workspace: ws, reduceStatistics: { comm.allReduceSum($0, count: $1) },
                                exchange: exchange, into: hidden)
            BlockBoundary.leave(hidden, count: T * H, fused: fused, communicator: comm)
        }
        // The final allreduce, fused with the residual add and norm_f.
        BlockBoundary.enter(hidden, residual: residual, norm: normF, eps: eps, tokens: T, width: H, into: normed,
                            fused: fused, communicator: comm)
        for item in batch { item.sequence.position += item.tokens.count }

        if rows == .all { return head(normed, rows: T, workspace: ws, communicator: comm) }
        // Gather each sequence's last row, then one LM-head product for all of them.
        let last = ws.buffer(.lastRows, count: batch.count * H)
        for (i, range) in ranges.enumerated() { (last + i * H).update(from: normed + (range.upperBound - 1) * H, count: H) }
        return head(last, rows: batch.count, workspace: ws, communicator: comm)
    }

    /// LM head on this rank's vocabulary rows, then the slices gathered into `[rows, V]` on rank 0.
    private func head(_ out: UnsafePointer<Float>, rows: Int, workspace ws: Workspace, communicator comm: Communicator) -> [Float] {
        let V = config.vocabSize, localV = lmHead.rows
        let local = ws.buffer(.logits, count: rows * localV)
        MatMul.linear(out, tokens: rows, lmHead, into: local, workspace: ws)
        let counts = (0..<plan.tpSize).map { ShardPlan.part(V, plan.tpSize, $0).count * rows }
        let gathered = ws.buffer(.gatheredLogits, count: rows * V)
        comm.gather(local, count: rows * localV, into: gathered, counts: counts, root: 0)
        guard comm.isRoot else { return [] }
        // Gathered as [rank][row][V_rank]; logits are [row][V].
        var logits = [Float](repeating: 0, count: rows * V)
        var offset = 0
        for r in 0..<plan.tpSize {
            let vocab = ShardPlan.part(V, plan.tpSize, r)
            for row in 0..<rows {
                for v in 0..<vocab.count { logits[row * V + vocab.lowerBound + v] = gathered[offset + row * vocab.count + v] }
            }
            offset += rows * vocab.count
        }
        return logits
    }

    /// Bytes of the weight matrices this rank holds (its slices; the embedding table not counted).
    public var localWeightBytes: Int {
        blocks.reduce(lmHead.byteCount) { $0 + $1.mixer.matrixBytes.dense + $1.mixer.matrixBytes.experts }
    }

    /// Weight bytes one decode step streams on this rank: every matrix, except that only
    /// `k` of the `E` routed experts run per token, and one embedding row.
    public var bytesReadPerToken: Double {
        let expertShare = config.has(.moe) ? Double(config.expertsPerToken) / Double(config.numExperts) : 0
        let mixers = blocks.reduce(0.0) { $0 + Double($1.mixer.matrixBytes.dense) + Double($1.mixer.matrixBytes.experts) * expertShare }
        return mixers + Double(lmHead.byteCount) + Double(embeddings.cols * embeddings.dtype.byteSize)
    }

    /// Parameters held by this rank's model, counted from the checkpoint tensors it uses.
    public var parameterCount: Int {
        checkpoint.inventory().filter { DType(rawValue: $0.dtype)?.isWeightType ?? false }.reduce(0) { $0 + $1.elements }
    }
}
