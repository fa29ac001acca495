import CKernels
import Foundation

/// Mamba2 mixer (`M` layers), mirroring transformers' `NemotronHMamba2Mixer` with the real
/// kernels' numerics (docs/architecture.md): in_proj → [z | xBC | dt], causal depthwise conv + SiLU over
/// xBC with a carried state, `dt = softplus(dt + dt_bias)` clamped only to `time_step_limit`,
/// the selective-state recurrence with D skip, gate-first grouped RMSNorm, out_proj.
///
/// Holds this rank's heads and groups only; in_proj rows are gathered per rank as
/// [z_r | x_r | B_r | C_r | dt_r] and conv channels as [x_r | B_r | C_r]. The output is this
/// rank's partial sum of out_proj; the block boundary reduces it. When tp > n_groups, several
/// ranks share one B/C group (each holding a replica) and the gated norm needs the group's sum
/// of squares over all of them: the mixer sums its `[T, G]` partial sums across the ranks with
/// `ForwardCollectives.sumGroupStatistics`, its one collective.
struct Mamba2Mixer {
    let headDim: Int  // P
    let stateSize: Int  // N
    let localHeads: Int  // nh_local
    let localGroups: Int  // G_local
    let headsPerGroup: Int  // nh / G (global)
    let firstHead: Int  // global index of local head 0
    let firstGroup: Int  // global index of local group 0
    let convKernel: Int  // K
    let groupWidth: Int  // Di / G channels per gated-norm group
    let groupCount: Int  // G (global)
    let replicatesGroups: Bool
    let eps: Float
    let dtLimit: ClosedRange<Float>

    /// `[Dp_local, H]` rows [z_r | x_r | B_r | C_r | dt_r].
    let inProj: WeightMatrix
    /// `[K, Dc_local]`: conv1d weight transposed so the inner loop runs over channels.
    let convWeight: [Float]
    /// `[Dc_local]`, zeros when the checkpoint has no conv bias.
    let convBias: [Float]
    /// `[nh_local]` each; `A = −exp(A_log)` precomputed in fp32.
    let a: [Float]
    let d: [Float]
    let dtBias: [Float]
    /// `[Di_local]` gated-norm weight.
    let normWeight: [Float]
    /// `[H, Di_local]`: this rank's columns of out_proj.
    let outProj: WeightMatrix

    var localInner: Int { localHeads * headDim }  // Di_local
    var localConvChannels: Int { localInner + 2 * localGroups * stateSize }  // Dc_local
    var localProjection: Int { localInner + localConvChannels + localHeads }  // Dp_local

    init(layer: Int, config c: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        let name = { WeightNames.layer(layer, $0) }
        let (P, N, Di, GN) = (c.mambaHeadDim, c.ssmStateSize, c.mambaInner, c.mambaGroups * c.ssmStateSize)
        let heads = plan.mambaHeadRange
        let groups = plan.mambaGroupRange
        headDim = P
        stateSize = N
        localHeads = heads.count
        localGroups = groups.count
        headsPerGroup = c.mambaHeads / c.mambaGroups
        firstHead = heads.lowerBound
        firstGroup = groups.lowerBound
        convKernel = c.convKernel
        groupWidth = Di / c.mambaGroups
        groupCount = c.mambaGroups
        replicatesGroups = plan.replicatesMambaGroups
        eps = c.normEps
        dtLimit = c.timeStepLimit

        let headChannels = heads.lowerBound * P..<heads.upperBound * P
        let groupChannels = groups.lowerBound * N..<groups.upperBound * N
        func shifted(_ r: Range<Int>, _ by: Int) -> Range<Int> { r.lowerBound + by..<r.upperBound + by }
        // Checkpoint in_proj rows are [z (Di) | x (Di) | B (G·N) | C (G·N) | dt (nh)].
        inProj = try checkpoint.linear(
            name(WeightNames.Mamba.inProj), rows: c.inProjSize, cols: c.hiddenSize,
            rowSegments: [
                headChannels, shifted(headChannels, Di), shifted(groupChannels, 2 * Di),
                shifted(groupChannels, 2 * Di + GN),
                shifted(heads, 2 * Di + 2 * GN),
            ])
        // Conv channels are [x (Di) | B (G·N) | C (G·N)].
        let channels = [headChannels, shifted(groupChannels, Di), shifted(groupChannels, Di + GN)].flatMap { Array($0) }
        let K = c.convKernel
        let Dc = c.convChannels
        let fullWeight = try checkpoint.floats(name(WeightNames.Mamba.conv1dWeight), shapes: [[Dc, 1, K], [Dc, K]])
        convWeight = (0..<K).flatMap { j in channels.map { fullWeight[$0 * K + j] } }
        if c.useConvBias {
            let bias = try checkpoint.vector(name(WeightNames.Mamba.conv1dBias), count: Dc)
            convBias = channels.map { bias[$0] }
        } else {
            convBias = [Float](repeating: 0, count: channels.count)
        }
        a = try checkpoint.vector(name(WeightNames.Mamba.aLog), count: c.mambaHeads, range: heads).map { -expf($0) }
        d = try checkpoint.vector(name(WeightNames.Mamba.d), count: c.mambaHeads, range: heads)
        dtBias = try checkpoint.vector(name(WeightNames.Mamba.dtBias), count: c.mambaHeads, range: heads)
        normWeight = try checkpoint.vector(name(WeightNames.Mamba.norm), count: Di, range: headChannels)
        outProj = try checkpoint.linear(
            name(WeightNames.Mamba.outProj), rows: c.hiddenSize, cols: Di, columns: headChannels)
        precondition(!plan.replicatesMambaGroups || localHeads <= headsPerGroup, "a rank's heads span one group")
    }

    func makeState() -> MambaState {
        MambaState(convCount: (convKernel - 1) * localConvChannels, ssmCount: localHeads * headDim * stateSize)
    }

    /// u `[T, H]` normed input (the rows of every sequence in the batch) → out `[T, H]` partial
    /// sum of out_proj over ranks. Conv and scan run per sequence segment, on its own state.
    func forward(
        _ u: UnsafePointer<Float>, segments: [Segment<MambaState>], pass: ForwardPass,
        into out: UnsafeMutablePointer<Float>
    ) {
        let T = segments.last?.rows.upperBound ?? 0
        let ws = pass.workspace
        let projection = ws.buffer(.mambaProjection, count: T * localProjection)
        MatMul.linear(u, tokens: T, inProj, into: projection, pass.kernels)
        let xBC = ws.buffer(.convOutput, count: T * localConvChannels)
        convolve(projection, segments: segments, workspace: ws, into: xBC)
        let y = ws.buffer(.ssmOutput, count: T * localInner)
        scan(xBC, dtRaw: projection + localInner + localConvChannels, segments: segments, workspace: ws, into: y)
        gatedNorm(y, gate: projection, tokens: T, pass: pass)
        MatMul.linear(y, tokens: T, outProj, into: out, pass.kernels)
    }

    // MARK: - Causal depthwise conv

    /// Per segment: `xBC[t, c] = silu(b[c] + Σ_j w[j, c] · input[t − (K−1) + j, c])`, where inputs
    /// before the segment's first row come from its conv state; afterwards the last K−1 raw
    /// inputs become the new state.
    private func convolve(
        _ projection: UnsafePointer<Float>, segments: [Segment<MambaState>], workspace ws: Workspace,
        into xBC: UnsafeMutablePointer<Float>
    ) {
        let Dc = localConvChannels
        let K = convKernel
        let history = K - 1
        let stride = localProjection
        let raw = projection + localInner
        let shared = UncheckedSendable((raw, xBC, segments))
        convWeight.withUnsafeBufferPointer { w in
            convBias.withUnsafeBufferPointer { b in
                let (w, b) = UncheckedSendable((w, b)).value
                ws.pool.forRanges(Dc, alignment: 16, minimumPerThread: 256) { channels in
                    let (raw, xBC, segments) = shared.value
                    for segment in segments {
                        let first = segment.rows.lowerBound
                        for t in segment.rows {
                            let o = xBC + t * Dc
                            for c in channels { o[c] = b[c] }
                            for j in 0..<K {
                                // Position t − (K−1) + j relative to the segment start.
                                let local = t - first - history + j
                                let row =
                                    local < 0
                                    ? UnsafePointer(segment.state.conv + (history + local) * Dc)
                                    : raw + (first + local) * stride
                                let wj = w.baseAddress! + j * Dc
                                for c in channels { o[c] += wj[c] * row[c] }
                            }
                            Activation.silu(o + channels.lowerBound, count: channels.count)
                        }
                    }
                }
            }
        }
        for segment in segments { updateConvState(segment, raw: raw) }
    }

    /// Keeps the last K−1 raw inputs of the segment (older state rows shift in when it is short).
    private func updateConvState(_ segment: Segment<MambaState>, raw: UnsafePointer<Float>) {
        let Dc = localConvChannels
        let history = convKernel - 1
        let n = segment.rows.count
        guard history > 0 else { return }
        let conv = segment.state.conv
        let kept = max(0, history - n)
        if kept > 0 { conv.update(from: conv + (history - kept) * Dc, count: kept * Dc) }
        for i in kept..<history {
            let row = segment.rows.upperBound - (history - i)
            (conv + i * Dc).update(from: raw + row * localProjection, count: Dc)
        }
    }

    // MARK: - Selective scan

    /// Per head h (group g), token t: `S = exp(dt·A)·S + dt·x ⊗ B`, `y = S·C + D·x` (docs/architecture.md),
    /// each segment on its own SSM state.
    private func scan(
        _ xBC: UnsafePointer<Float>, dtRaw: UnsafePointer<Float>, segments: [Segment<MambaState>],
        workspace ws: Workspace, into y: UnsafeMutablePointer<Float>
    ) {
        let shared = UncheckedSendable((xBC, dtRaw, y, segments))
        let stepKernel = SSM.hasStepKernel(stateSize: stateSize)
        ws.pool.forRanges(localHeads) { heads in
            let (xBC, dtRaw, y, segments) = shared.value
            for h in heads {
                let group = (firstHead + h) / headsPerGroup - firstGroup
                for segment in segments {
                    let S = segment.state.ssm + h * headDim * stateSize
                    for t in segment.rows {
                        let row = xBC + t * localConvChannels
                        let x = row + h * headDim
                        let B = row + localInner + group * stateSize
                        let C = row + localInner + localGroups * stateSize + group * stateSize
                        var dt = Activation.softplus(dtRaw[t * localProjection + h] + dtBias[h])
                        dt = min(max(dt, dtLimit.lowerBound), dtLimit.upperBound)
                        let decay = expf(dt * a[h])
                        let out = y + t * localInner + h * headDim
                        if stepKernel {
                            ck_ssm_step(S, headDim, stateSize, decay, dt, x, B, C, d[h], out)
                            continue
                        }
                        for p in 0..<headDim {
                            let Sp = S + p * stateSize
                            out[p] =
                                SSM.update(Sp, decay: decay, input: dt * x[p], B: B, C: C, count: stateSize) + d[h]
                                * x[p]
                        }
                    }
                }
            }
        }
    }

    // MARK: - Gated grouped RMSNorm

    /// `v = y ⊙ silu(z)`, then RMSNorm within each group of `Di/G` channels (norm_before_gate = False).
    /// Tokens are split over the threads (prefill: `[T, Di]`, an `expf` per element).
    private func gatedNorm(
        _ y: UnsafeMutablePointer<Float>, gate z: UnsafePointer<Float>, tokens T: Int, pass: ForwardPass
    ) {
        // Sums of squares per token and group, `[T, G]`, at this rank's groups' columns. A rank
        // holds whole groups, or (replicated groups) `chunk` channels of one whose other
        // channels sit on its peers: then the sums are added up across ranks.
        let chunk = min(groupWidth, localInner)
        let (G, Di, stride, first) = (groupCount, localInner, localProjection, firstGroup)
        let sums = pass.workspace.buffer(.groupStatistics, count: T * G)
        if replicatesGroups { sums.initialize(repeating: 0, count: T * G) }
        let pool = pass.workspace.pool
        let shared = UncheckedSendable((y, z, sums))
        pool.forRanges(T) { rows in
            let (y, z, sums) = shared.value
            for t in rows {
                let v = y + t * Di
                let zt = z + t * stride
                Activation.multiplySilu(v, gate: zt, count: Di)
                for q in 0..<Di / chunk { sums[t * G + first + q] = RMSNorm.sumOfSquares(v + q * chunk, count: chunk) }
            }
        }
        if replicatesGroups { pass.collectives.sumGroupStatistics(sums, count: T * G) }
        let (width, eps) = (groupWidth, eps)
        normWeight.withUnsafeBufferPointer { w in
            let weights = UncheckedSendable(w.baseAddress!)
            pool.forRanges(T) { rows in
                let (y, _, sums) = shared.value
                for t in rows {
                    for q in 0..<Di / chunk {
                        let v = y + t * Di + q * chunk
                        let inverse = RMSNorm.inverseRMS(sumOfSquares: sums[t * G + first + q], count: width, eps: eps)
                        RMSNorm.scale(v, weight: weights.value + q * chunk, inverse: inverse, width: chunk, into: v)
                    }
                }
            }
        }
    }
}

/// The SSM inner loop, vectorised over the state dimension.
enum SSM {
    /// Whether one token's update of a head runs `ck_ssm_step` (AVX-512, whole 16-float
    /// vectors of the state) instead of `update` below: this Swift code is built for AVX2
    /// (8 lanes, one sum across lanes per state row). With the kernel, 0.74 B model (state 128),
    /// 2 threads: pp512 187-193 → 203 tokens/s, decode 19.2-19.5 → 20.1. Four rows at a time
    /// (each row's sum is a chain of FMAs): 0.83 → 0.63 µs a token and head (P 64, N 128, C
    /// harness, one thread), the same sums.
    static func hasStepKernel(stateSize: Int) -> Bool { MatMul.hasAVX512 && stateSize % 16 == 0 }

    /// `S[n] = decay·S[n] + input·B[n]` for n < count; returns `Σ_n S[n]·C[n]`.
    @inline(__always)
    static func update(
        _ S: UnsafeMutablePointer<Float>, decay: Float, input: Float, B: UnsafePointer<Float>,
        C: UnsafePointer<Float>, count: Int
    ) -> Float {
        var acc = SIMD8<Float>()
        let decayV = SIMD8<Float>(repeating: decay)
        let inputV = SIMD8<Float>(repeating: input)
        var n = 0
        while n + 8 <= count {
            let s = UnsafeRawPointer(S + n).loadUnaligned(as: SIMD8<Float>.self)
            let b = UnsafeRawPointer(B + n).loadUnaligned(as: SIMD8<Float>.self)
            let c = UnsafeRawPointer(C + n).loadUnaligned(as: SIMD8<Float>.self)
            let updated = s * decayV + inputV * b
            UnsafeMutableRawPointer(S + n).storeBytes(of: updated, as: SIMD8<Float>.self)
            acc.addProduct(updated, c)
            n += 8
        }
        var sum = acc.sum()
        while n < count {
            S[n] = S[n] * decay + input * B[n]
            sum += S[n] * C[n]
            n += 1
        }
        return sum
    }
}
