import Foundation

/// The Nemotron-H model on one rank: embedding, blocks, final norm and this rank's rows of the
/// LM head, with the parallelism and compute policy it runs under. `forward` is the whole
/// recipe (docs/architecture.md, "Forward pass").
public final class NemotronH {
    public let config: ModelConfig
    /// How the ranks share the model; its tensor-parallel fusion switch may be flipped between
    /// passes (bench --compare-fusion).
    public var parallelism: Parallelism
    public let plan: ShardPlan
    /// How matrix products are computed.
    public var compute: ComputePolicy
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
    public init(
        checkpoint: Checkpoint, config: ModelConfig, parallelism: Parallelism, compute: ComputePolicy = ComputePolicy(),
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws {
        try Self.check(checkpoint, against: config)
        self.config = config
        self.parallelism = parallelism
        self.compute = compute
        self.checkpoint = checkpoint
        // Column cuts fall on the largest block any stored or on-load format scales together.
        let alignment = max(config.quantization?.blockAlignment ?? 1, checkpoint.quantizeOnLoad?.blockSize ?? 1)
        let plan = try ShardPlan(config: config, layout: parallelism.layout, alignment: alignment)
        self.plan = plan
        let (V, H) = (config.vocabSize, config.hiddenSize)
        embeddings = try checkpoint.matrix(WeightNames.embeddings, rows: V, cols: H)
        blocks = try config.layerKinds.enumerated().map { index, kind in
            defer { progress(index + 1, config.numLayers) }
            return try Block(index: index, kind: kind, config: config, plan: plan, checkpoint: checkpoint)
        }
        normF = try checkpoint.vector(WeightNames.normF, count: H)
        // A tied head is the embedding, kept as it is; an untied one is a linear layer.
        lmHead =
            config.tieWordEmbeddings
            ? try checkpoint.matrix(WeightNames.embeddings, rows: V, cols: H, rowSegments: [plan.vocabRange])
            : try checkpoint.linear(WeightNames.lmHead, rows: V, cols: H, rowSegments: [plan.vocabRange])
    }

    /// Loads `config.json` and the weights of this rank from a checkpoint directory, quantizing
    /// float linear weights into `quantize` as they load (refused for a quantized checkpoint).
    public convenience init(
        directory: URL, parallelism: Parallelism = Parallelism(world: SingleProcess()),
        compute: ComputePolicy = ComputePolicy(), quantize: WeightFormat? = nil,
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws {
        let config = try ModelConfig(directory: directory)
        if let quantize, let stored = config.quantization {
            throw NemotronError.invalidArgument(
                name: "quantize", value: quantize.rawValue,
                expected: "none for a checkpoint that is already quantized (\(stored.path): \(stored.key) has "
                    + "quant_method \(stored.method.rawValue), quant_algo \(stored.algorithm)); quantize loads "
                    + "bf16, f16 or f32 checkpoints")
        }
        try self.init(
            checkpoint: try Checkpoint(
                directory: directory, prefix: config.weightPrefix, quantization: config.quantization,
                quantizeOnLoad: quantize),
            config: config, parallelism: parallelism, compute: compute, progress: progress)
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

    /// Runs `tokens` of one sequence through the model, advancing its state.
    public func forward(_ tokens: [Int], sequence: SequenceState, logits rows: LogitRows, workspace ws: Workspace)
        -> Logits
    {
        forward([(tokens, sequence)], logits: rows, workspace: ws)
    }

    /// Runs several sequences in one pass: their tokens are stacked into one `[ΣT, H]` batch,
    /// so every matrix product serves them all, while conv, scan and attention run on each
    /// sequence's own state. Returns logits on rank 0 of the tensor group: every row (`.all`),
    /// or each sequence's last row in batch order (`.last`). Collectives: `ForwardCollectives`.
    ///
    /// With `gatherVocabulary` false every rank gets the logits of its own vocabulary rows
    /// instead (`Logits.firstVocabulary` says which), and no logits cross ranks.
    public func forward(
        _ batch: [(tokens: [Int], sequence: SequenceState)], logits rows: LogitRows, workspace ws: Workspace,
        gatherVocabulary: Bool = true
    ) -> Logits {
        let pass = ForwardPass(
            kernels: KernelContext(workspace: ws, policy: compute),
            collectives: ForwardCollectives(parallelism: parallelism))
        let tokens = batch.flatMap(\.tokens)
        var ranges: [Range<Int>] = []
        for item in batch {
            ranges.append((ranges.last?.upperBound ?? 0)..<(ranges.last?.upperBound ?? 0) + item.tokens.count)
        }
        let (T, H, eps) = (tokens.count, config.hiddenSize, config.normEps)
        let partial = ws.buffer(.mixerOutput, count: T * H)
        let residual = ws.buffer(.residual, count: T * H)
        let normed = ws.buffer(.normed, count: T * H)
        for (t, token) in tokens.enumerated() { embeddings.row(token, into: residual + t * H) }

        // Decode under int8 compute: the fused boundary also quantizes the normed rows, once
        // for all of the block's int8 products (QuantizedRows).
        let quantizesNormed =
            parallelism.fusedAllReduceNorm && compute.usesInt8Activations && T <= MatMul.streamingMaxTokens
            && H % 32 == 0
        let packages =
            quantizesNormed ? QuantizedRows(for: normed, rows: T, width: H, in: ws, slot: .quantizedNormed) : nil
        for block in blocks {
            ws.quantizedRows = nil
            if block.index == 0 {
                // The embedding is complete on every rank: layer 0 has no pre-allreduce.
                RMSNorm.apply(residual, weight: block.norm, eps: eps, tokens: T, width: H, into: normed, pool: ws.pool)
            } else {
                ws.quantizedRows = pass.collectives.enterBlock(
                    partial, residual: residual, norm: block.norm, eps: eps, tokens: T, width: H, into: normed,
                    quantized: packages, pool: ws.pool)
            }
            let segments = zip(ranges, batch).map { Segment(rows: $0, state: $1.sequence.layers[block.index]) }
            block.mixer.forward(normed, segments: segments, pass: pass, into: partial)
            pass.collectives.leaveBlock(partial, count: T * H)
        }
        // The final allreduce, fused with the residual add and norm_f (and quantized for the LM head).
        ws.quantizedRows = pass.collectives.enterBlock(
            partial, residual: residual, norm: normF, eps: eps, tokens: T, width: H, into: normed,
            quantized: packages, pool: ws.pool)
        defer { ws.quantizedRows = nil }
        for item in batch { item.sequence.position += item.tokens.count }

        // One token per sequence (decode): the last rows are all the rows.
        if rows == .all || T == batch.count { return head(normed, rows: T, pass: pass, gather: gatherVocabulary) }
        // Gather each sequence's last row, then one LM-head product for all of them.
        let last = ws.buffer(.lastRows, count: batch.count * H)
        for (i, range) in ranges.enumerated() {
            (last + i * H).update(from: normed + (range.upperBound - 1) * H, count: H)
        }
        return head(last, rows: batch.count, pass: pass, gather: gatherVocabulary)
    }

    /// LM head on this rank's vocabulary rows, then the slices gathered into `[rows, V]` on rank 0.
    private func head(_ out: UnsafePointer<Float>, rows: Int, pass: ForwardPass, gather: Bool) -> Logits {
        let V = config.vocabSize
        let localV = lmHead.rows
        let tp = plan.tpSize
        let ws = pass.workspace
        let local = ws.buffer(.logits, count: rows * localV)
        MatMul.linear(out, tokens: rows, lmHead, into: local, pass.kernels)
        if !gather {
            return Logits(
                rows: rows, vocab: localV, values: UnsafePointer(local), workspace: ws,
                firstVocabulary: plan.vocabRange.lowerBound)
        }
        let counts = (0..<tp).map { Partition.part(V, tp, $0).count * rows }
        let gathered = ws.buffer(.gatheredLogits, count: rows * V)
        pass.collectives.gatherLogits(local, count: rows * localV, into: gathered, counts: counts)
        guard parallelism.tensorGroup.isRoot else { return Logits(rows: 0, vocab: V, values: nil, workspace: ws) }
        // Gathered as [rank][row][V_rank]; logits are [row][V].
        let logits = ws.buffer(.orderedLogits, count: rows * V)
        var offset = 0
        for r in 0..<tp {
            let vocab = Partition.part(V, tp, r)
            for row in 0..<rows {
                (logits + row * V + vocab.lowerBound).update(
                    from: gathered + offset + row * vocab.count, count: vocab.count)
            }
            offset += rows * vocab.count
        }
        return Logits(rows: rows, vocab: V, values: UnsafePointer(logits), workspace: ws)
    }

    /// One layer's weight matrices on this rank: leaf name, format and bytes held (with scales).
    public struct LayerWeights: Sendable {
        public let index: Int
        public let kind: LayerKind
        public let matrices: [(name: String, format: WeightFormat, bytes: Int)]
        public var bytes: Int { matrices.reduce(0) { $0 + $1.bytes } }
        /// Formats with the leaves stored in each, experts collapsed (`experts.*.up_proj`), in
        /// checkpoint order: "in_proj fp8, out_proj fp8".
        public var formats: String {
            var seen: [String] = []
            var formats: [String: WeightFormat] = [:]
            for (name, format, _) in matrices {
                let parts = name.split(separator: ".")
                let leaf = parts.first == "experts" && parts.count == 3 ? "experts.*.\(parts[2])" : name
                if formats[leaf] == nil { seen.append(leaf) }
                formats[leaf] = formats[leaf].map { $0 == format ? $0 : format } ?? format
            }
            return seen.map { "\($0) \(formats[$0]!)" }.joined(separator: ", ")
        }
    }

    /// Every layer's matrices as this rank holds them, then the LM head as layer `numLayers`.
    public var heldWeights: (layers: [LayerWeights], lmHead: (format: WeightFormat, bytes: Int)) {
        (
            blocks.map { block in
                LayerWeights(
                    index: block.index, kind: config.layerKinds[block.index],
                    matrices: block.mixer.matrices.map { ($0.name, $0.matrix.format, $0.matrix.byteCount) })
            }, (lmHead.format, lmHead.byteCount)
        )
    }

    /// The formats of every matrix this rank holds, the LM head included.
    public var heldFormats: Set<WeightFormat> {
        let held = heldWeights
        return Set(held.layers.flatMap { $0.matrices.map(\.format) } + [held.lmHead.format])
    }

    /// Bytes of the weight matrices this rank holds (its slices; the embedding table not counted).
    public var localWeightBytes: Int {
        blocks.reduce(lmHead.byteCount) { $0 + $1.mixer.matrixBytes.dense + $1.mixer.matrixBytes.experts }
    }

    /// Weight bytes one decode step streams on this rank: every matrix, except that only
    /// `k` of the `E` routed experts run per token, and one embedding row.
    public var bytesReadPerToken: Double {
        let expertShare = config.has(.moe) ? Double(config.expertsPerToken) / Double(config.numExperts) : 0
        let mixers = blocks.reduce(0.0) {
            $0 + Double($1.mixer.matrixBytes.dense) + Double($1.mixer.matrixBytes.experts) * expertShare
        }
        return mixers + Double(lmHead.byteCount) + Double(embeddings.rowBytes)
    }

    /// Parameters of the language model as transformers counts them
    /// (`sum(p.numel() for p in model.parameters())`): every tensor under `backbone.` except the
    /// router's correction bias (a buffer), and the LM head unless it is the tied embedding.
    /// MTP heads and a wrapper's vision and projector tensors are not counted.
    public var parameterCount: Int {
        checkpoint.names.reduce(0) { total, name in
            let counted =
                name.hasPrefix(WeightNames.backbone)
                ? !name.hasSuffix(WeightNames.MoE.eScoreCorrectionBias)
                : name == WeightNames.lmHead && !config.tieWordEmbeddings
            return total + (counted ? checkpoint.elementCount(name) : 0)
        }
    }
}

/// Logits `[rows, V]` of one forward pass, on rank 0 of the tensor group (no rows elsewhere);
/// or, when not gathered, `[rows, V_local]` of this rank's vocabulary rows on every rank.
/// They live in the workspace and are valid until its next forward pass: decode steps copy
/// nothing.
public struct Logits {
    public let rows: Int
    public let vocab: Int
    let values: UnsafePointer<Float>?
    /// Keeps the buffer alive.
    let workspace: Workspace
    /// The vocabulary id of column 0 (nonzero for a rank's own rows of a split LM head).
    public var firstVocabulary = 0

    public var isEmpty: Bool { rows == 0 }

    /// Row `r`, `vocab` floats.
    public func row(_ r: Int) -> UnsafeBufferPointer<Float> {
        precondition(r < rows, "row \(r) of \(rows)")
        return UnsafeBufferPointer(start: values! + r * vocab, count: vocab)
    }

    /// A copy of every row, `[rows · V]`.
    public var array: [Float] {
        guard let values else { return [] }
        return Array(UnsafeBufferPointer(start: values, count: rows * vocab))
    }
}
