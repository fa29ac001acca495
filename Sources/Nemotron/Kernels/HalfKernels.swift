import CKernels

/// Kernels for 16-bit float weights (bf16, f16):
/// - few tokens (decode): CKernels streams each weight row once, widening in registers, in
///   64-row blocks the threads claim. Bandwidth-bound: bytes read ≈ weight bytes.
/// - many tokens, bf16 weights, bf16 compute on a CPU with AVX512-BF16: both operands in bf16,
///   f32 accumulation.
/// - many tokens otherwise: widen a tile of rows into f32 scratch, then sgemm against the
///   tile, so only one tile is ever widened at a time.
enum HalfKernels {
    static let tileFloats = 1 << 21

    static func linear(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ context: KernelContext
    ) {
        if tokens <= MatMul.streamingMaxTokens {
            stream(x, tokens: tokens, w, into: y, context.workspace)
        } else if w.format == .bf16 && context.policy.usesBF16GEMM {
            bf16GEMM(
                x, tokens: tokens, weights: w.base.assumingMemoryBound(to: UInt16.self), rows: w.rows, cols: w.cols,
                into: y, ldy: w.rows, context.workspace)
        } else {
            tiled(x, tokens: tokens, w, into: y, context.workspace)
        }
    }

    private static func stream(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ workspace: Workspace
    ) {
        let weights = UncheckedSendable(w.base.assumingMemoryBound(to: UInt16.self))
        var input = UncheckedSendable(x)
        if w.format == .bf16 {
            let prepared = workspace.buffer(.preparedInput, count: tokens * w.cols)
            for t in 0..<tokens { ck_gemv_bf16_prepare(x + t * w.cols, prepared + t * w.cols, w.cols) }
            input = UncheckedSendable(UnsafePointer(prepared))
        }
        let output = UncheckedSendable(y)
        let kernel = w.format == .bf16 ? ck_gemv_bf16 : ck_gemv_f16
        // 64-row blocks claimed dynamically: the cores' speeds differ under outside load.
        workspace.pool.forBlocks(w.rows, block: 64) { rows in
            kernel(
                weights.value, w.cols, rows.lowerBound, rows.upperBound, input.value, w.cols, tokens, output.value,
                w.rows)
        }
    }

    /// `y[t·ldy + r] = Σ_k weights[r, k] · x[t, k]` for a bf16 `[rows, cols]` matrix: both
    /// operands in bf16, f32 accumulation; rows split over the threads, each packing its own
    /// 32-row weight panels into its scratch.
    static func bf16GEMM(
        _ x: UnsafePointer<Float>, tokens: Int, weights: UnsafePointer<UInt16>, rows: Int, cols: Int,
        into y: UnsafeMutablePointer<Float>, ldy: Int, _ workspace: Workspace
    ) {
        let w = (rows: rows, cols: cols)
        let pairs = (w.cols + 1) / 2
        let converted = UnsafeMutableRawPointer(workspace.buffer(.bf16Input, count: tokens * pairs))
            .bindMemory(to: UInt16.self, capacity: tokens * pairs * 2)
        for t in 0..<tokens {
            ck_f32_to_bf16(x + t * w.cols, converted + t * pairs * 2, w.cols)
            if w.cols % 2 == 1 { converted[t * pairs * 2 + w.cols] = 0 }
        }
        let scratchBytes = (ck_gemm_bf16_scratch(w.cols) + 63) & ~63
        let scratch = UnsafeMutableRawPointer(
            workspace.buffer(.gemmScratch, count: workspace.threads * scratchBytes / 4 + 16))
        let shared = UncheckedSendable((weights, UnsafePointer(converted), y, scratch))
        let panels = (w.rows + 31) / 32
        workspace.pool.forParts(workspace.threads) { part in
            let (weights, input, output, scratch) = shared.value
            // A part may get no panel (fewer panels than threads).
            let range = Partition.part(panels, workspace.threads, part)
            guard !range.isEmpty else { return }
            let rows = range.lowerBound * 32..<min(w.rows, range.upperBound * 32)
            ck_gemm_bf16(
                weights, w.cols, rows.lowerBound, rows.upperBound, input, tokens, output, ldy,
                scratch + part * scratchBytes)
        }
    }

    /// Widens (dequantizes) a tile of rows into f32 scratch, then sgemm against the tile.
    static func tiled(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ workspace: Workspace
    ) {
        // About 8 MiB of f32 per tile: measured sgemm(512×N×2048) at 130 GFLOP/s for N = 256 and
        // 169 for N = 2048 (2 threads); larger tiles amortise OpenBLAS's packing of x.
        let tileRows = max(16, min(w.rows, tileFloats / max(w.cols, 1)))
        let tile = workspace.buffer(.weightTile, count: tileRows * w.cols)
        let shared = UncheckedSendable(tile)
        var first = 0
        while first < w.rows {
            let count = min(tileRows, w.rows - first)
            let start = first
            workspace.pool.forRanges(count, minimumPerThread: 8) { rows in
                w.rows(from: start + rows.lowerBound, count: rows.count, into: shared.value + rows.lowerBound * w.cols)
            }
            MatMul.sgemm(x, tokens: tokens, tile, rows: count, cols: w.cols, into: y + first, ldy: w.rows)
            first += count
        }
    }
}
