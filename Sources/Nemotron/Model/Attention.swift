import CKernels
import Foundation

/// Grouped-query self-attention (`*` layers), mirroring transformers' `NemotronHAttention`
/// (docs/architecture.md): no positional encoding, no q/k norm, causal softmax in fp32 with scale
/// `dh^-1/2`; `head_dim` may differ from hidden/heads. Holds this rank's q heads and the KV
/// heads they read (split, or replicated when tp > hkv); the output is this rank's partial sum
/// of o_proj.
struct Attention {
    let headDim: Int  // dh
    let localHeads: Int  // hq_local
    let localKVHeads: Int  // hkv_local
    let firstHead: Int  // global q head of local head 0
    let firstKVHead: Int  // global kv head of local kv head 0
    let queriesPerKV: Int  // hq / hkv (global)
    let scale: Float

    /// `[hq_local·dh, H]`, `[hkv_local·dh, H]` ×2, and `[H, hq_local·dh]` (this rank's o_proj columns).
    let qProj: WeightMatrix
    let kProj: WeightMatrix
    let vProj: WeightMatrix
    let oProj: WeightMatrix

    init(layer: Int, config c: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        let name = { WeightNames.layer(layer, $0) }
        let dh = c.headDim
        func rows(_ heads: Range<Int>) -> Range<Int> { heads.lowerBound * dh..<heads.upperBound * dh }
        headDim = dh
        localHeads = plan.localHeads
        localKVHeads = plan.localKVHeads
        firstHead = plan.qHeadRange.lowerBound
        firstKVHead = plan.kvHeadRange.lowerBound
        queriesPerKV = c.numHeads / c.numKVHeads
        scale = 1 / Float(dh).squareRoot()
        qProj = try checkpoint.linear(
            name(WeightNames.Attention.qProj), rows: c.numHeads * dh, cols: c.hiddenSize,
            rowSegments: [rows(plan.qHeadRange)])
        kProj = try checkpoint.linear(
            name(WeightNames.Attention.kProj), rows: c.numKVHeads * dh, cols: c.hiddenSize,
            rowSegments: [rows(plan.kvHeadRange)])
        vProj = try checkpoint.linear(
            name(WeightNames.Attention.vProj), rows: c.numKVHeads * dh, cols: c.hiddenSize,
            rowSegments: [rows(plan.kvHeadRange)])
        oProj = try checkpoint.linear(
            name(WeightNames.Attention.oProj), rows: c.hiddenSize, cols: c.numHeads * dh,
            columns: rows(plan.qHeadRange))
        // FP8 KV-cache scales of ModelOpt checkpoints: checked, not used (the cache stays f32).
        try checkpoint.checkActivationScale(name(WeightNames.Attention.kScale))
        try checkpoint.checkActivationScale(name(WeightNames.Attention.vScale))
    }

    func makeState(capacity: Int) -> KVCache { KVCache(width: localKVHeads * headDim, capacity: capacity) }

    /// u `[T, H]` normed input (the rows of every sequence in the batch) → out `[T, H]` partial
    /// sum of o_proj over ranks. Each segment appends to and attends over its own KV cache.
    func forward(
        _ u: UnsafePointer<Float>, segments: [Segment<KVCache>], pass: ForwardPass,
        into out: UnsafeMutablePointer<Float>
    ) {
        let ws = pass.workspace
        let kernels = pass.kernels
        let T = segments.last?.rows.upperBound ?? 0
        let qWidth = localHeads * headDim
        let kvWidth = localKVHeads * headDim
        let q = ws.buffer(.queries, count: T * qWidth)
        let k = ws.buffer(.keys, count: T * kvWidth)
        let v = ws.buffer(.values, count: T * kvWidth)
        // One group: in decode, the three projections share one parallel dispatch.
        MatMul.linear(
            [
                Product(x: u, tokens: T, w: qProj, y: q), Product(x: u, tokens: T, w: kProj, y: k),
                Product(x: u, tokens: T, w: vProj, y: v),
            ], kernels)
        var pasts: [Int] = []
        for segment in segments {
            pasts.append(segment.state.count)
            segment.state.append(
                keys: k + segment.rows.lowerBound * kvWidth, values: v + segment.rows.lowerBound * kvWidth,
                tokens: segment.rows.count)
        }
        let context = segments.map(\.state.count).max() ?? 0
        let attended = ws.buffer(.attentionOutput, count: T * qWidth)
        // Prompt segments: two GEMMs per head and block of query rows. Single-token (decode)
        // segments: the loop below.
        let long = zip(segments, pasts).filter { $0.0.rows.count >= Self.gemmMinimumRows }
        for (segment, past) in long { attendWithGEMM(q, segment: segment, past: past, workspace: ws, into: attended) }
        let short = zip(segments, pasts).filter { $0.0.rows.count < Self.gemmMinimumRows }
        guard !short.isEmpty else {
            MatMul.linear(attended, tokens: T, oProj, into: out, kernels)
            return
        }
        // Sized by the largest KV-cache capacity, so decode steps do not grow it as the context does.
        let capacity = max(context, short.map(\.0.state.capacity).max() ?? 0)
        let scores = ws.buffer(.decodeScores, count: localHeads * capacity)
        let shared = UncheckedSendable((q, attended, scores, short))
        ws.pool.forRanges(localHeads) { heads in
            let (q, attended, scores, short) = shared.value
            for j in heads {
                let kv = (firstHead + j) / queriesPerKV - firstKVHead
                let p = scores + j * capacity
                for (segment, past) in short {
                    let cache = segment.state
                    for t in segment.rows {
                        attend(
                            query: q + t * qWidth + j * headDim, keys: cache.keys + kv * headDim,
                            values: cache.values + kv * headDim,
                            stride: kvWidth, length: past + t - segment.rows.lowerBound + 1, scores: p,
                            into: attended + t * qWidth + j * headDim)
                    }
                }
            }
        }
        MatMul.linear(attended, tokens: T, oProj, into: out, kernels)
    }

    /// Segments with at least this many rows use GEMMs for scores and weighted values.
    static let gemmMinimumRows = 8

    /// Query rows per work item of `attendWithGEMM`: more items than threads (16 heads × 8 blocks
    /// for a 512-token prompt of the 0.74 B model), little of the causal triangle computed in vain.
    /// 0.74 B model, pp2048 in 512-token chunks, 2 threads: 32, 64, 128 and 512 rows all gave
    /// 165-169 tokens/s (attention is 3 of its 24 layers).
    static let promptBlockRows = 64

    private func attendWithGEMM(
        _ q: UnsafePointer<Float>, segment: Segment<KVCache>, past: Int, workspace ws: Workspace,
        into attended: UnsafeMutablePointer<Float>
    ) {
        Self.attendWithGEMM(
            q, rows: segment.rows, past: past, keys: segment.state.keys, values: segment.state.values,
            kvHeads: (0..<localHeads).map { (firstHead + $0) / queriesPerKV - firstKVHead }, headDim: headDim,
            kvWidth: localKVHeads * headDim, scale: scale, workspace: ws, into: attended)
    }

    /// Causal attention of the query rows `rows` of `q` (`[T, heads·dh]`, `heads = kvHeads.count`;
    /// query row `rows.lowerBound + t` at position `past + t`) over a KV cache (`[past + n,
    /// kvWidth]`, local q head j reading KV head `kvHeads[j]`), into the same rows of `attended`.
    ///
    /// Work items of (head, block of `promptBlockRows` query rows), claimed by the pool's threads
    /// one at a time, the blocks of the last rows (the widest) first. Each item: `scores = scale ·
    /// Q·Kᵀ` over the positions its last row sees (`[rows, past + last + 1]`, one single-threaded
    /// sgemm into the thread's own slice of `.promptScores`), a causal softmax per row (row t sees
    /// positions 0 ... past + t), then `out = P·V` (one sgemm).
    static func attendWithGEMM(
        _ q: UnsafePointer<Float>, rows segment: Range<Int>, past: Int, keys: UnsafePointer<Float>,
        values: UnsafePointer<Float>, kvHeads: [Int], headDim dh: Int, kvWidth: Int, scale: Float,
        workspace ws: Workspace, into attended: UnsafeMutablePointer<Float>
    ) {
        let heads = kvHeads.count
        let (n, qWidth) = (segment.count, heads * dh)
        guard n > 0, heads > 0 else { return }
        let blockRows = min(n, promptBlockRows)
        let blocks = (n + blockRows - 1) / blockRows
        let perThread = blockRows * (past + n)
        let scores = ws.buffer(.promptScores, count: ws.threads * perThread)
        let shared = UncheckedSendable((q, scores, attended, keys, values))
        ws.pool.forBlocksWithPart(heads * blocks, block: 1) { part, items in
            let (q, scores, attended, keys, values) = shared.value
            let own = scores + part * perThread
            for item in items {
                let (j, block) = (item % heads, blocks - 1 - item / heads)
                let rows = block * blockRows..<min(n, (block + 1) * blockRows)
                let (width, kv) = (past + rows.upperBound, kvHeads[j])
                let first = segment.lowerBound + rows.lowerBound
                MatMul.gemm(
                    q + first * qWidth + j * dh, lda: qWidth, rows: rows.count, keys + kv * dh, ldb: kvWidth,
                    transposeB: true, columns: width, depth: dh, alpha: scale, into: own, ldc: width)
                for (i, t) in rows.enumerated() {
                    causalSoftmax(own + i * width, length: past + t + 1, width: width)
                }
                MatMul.gemm(
                    own, lda: width, rows: rows.count, values + kv * dh, ldb: kvWidth, transposeB: false, columns: dh,
                    depth: width, alpha: 1, into: attended + first * qWidth + j * dh, ldc: qWidth)
            }
        }
    }

    /// Softmax over the first `length` entries of a row; the rest (future positions) become 0.
    private static func causalSoftmax(_ row: UnsafeMutablePointer<Float>, length: Int, width: Int) {
        var maxScore = -Float.infinity
        for s in 0..<length { maxScore = max(maxScore, row[s]) }
        let inverse = 1 / Activation.expSum(row, count: length, shift: maxScore)
        for s in 0..<length { row[s] *= inverse }
        for s in length..<width { row[s] = 0 }
    }

    /// One query over the first `length` cached positions: softmax(q·kᵀ·scale)·v. With AVX-512
    /// the scores and the weighted values run in C (`ck_attention_scores`, `ck_attention_values`:
    /// 16 positions' sums across lanes at once; this Swift is built for AVX2), the softmax here.
    private func attend(
        query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int,
        length: Int, scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>
    ) {
        if MatMul.hasAVX512 {
            let maxScore = ck_attention_scores(query, keys, stride, length, headDim, scale, scores)
            let total = Activation.expSum(scores, count: length, shift: maxScore)
            ck_attention_values(scores, values, stride, length, headDim, 1 / total, out)
            return
        }
        var maxScore = -Float.infinity
        for s in 0..<length {
            scores[s] = FloatKernels.dot(query, keys + s * stride, count: headDim) * scale
            maxScore = max(maxScore, scores[s])
        }
        let total = Activation.expSum(scores, count: length, shift: maxScore)
        for e in 0..<headDim { out[e] = 0 }
        for s in 0..<length {
            Self.addScaled(values + s * stride, scores[s] / total, into: out, count: headDim)
        }
    }

    /// `out[i] += weight · v[i]`
    @inline(__always) private static func addScaled(
        _ v: UnsafePointer<Float>, _ weight: Float, into out: UnsafeMutablePointer<Float>, count: Int
    ) {
        var i = 0
        while i + 16 <= count {
            var o = load16(out + i)
            o.addProduct(SIMD16(repeating: weight), load16(v + i))
            UnsafeMutableRawPointer(out + i).storeBytes(of: o, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            out[i] += weight * v[i]
            i += 1
        }
    }

    @inline(__always) private static func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
}
