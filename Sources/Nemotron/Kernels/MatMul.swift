import COpenBLAS
import CKernels

/// The one place that multiplies activations by weights, and the only file that calls cblas.
///
/// `y[T, out] = x[T, in] · Wᵀ` with W `[out, in]` in its checkpoint dtype:
/// - f32 weights: OpenBLAS sgemv / sgemm.
/// - bf16 / f16 weights, few tokens (decode): CKernels streams each weight row once, widening
///   in registers, split by rows over the threads. This is bandwidth-bound: bytes read ≈ weight bytes.
/// - bf16 / f16 weights, many tokens (prefill): widen a tile of rows into f32 scratch, then
///   sgemm against the tile, so only one tile is ever widened at a time.
public enum MatMul {
    /// Token counts up to this use the streaming kernel (weights re-read from L1/L2 per token).
    static let streamingMaxTokens = 8
    static let tileFloats = 1 << 21

    static func linear(_ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix,
                       into y: UnsafeMutablePointer<Float>, workspace: Workspace) {
        guard tokens > 0, w.rows > 0 else { return }
        switch w.dtype {
        case .f32:
            let weights = w.base.assumingMemoryBound(to: Float.self)
            if tokens == 1 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(w.rows), Int32(w.cols), 1, weights, Int32(w.cols), x, 1, 0, y, 1)
            } else {
                sgemm(x, tokens: tokens, weights, rows: w.rows, cols: w.cols, into: y, ldy: w.rows)
            }
        case .bf16, .f16:
            if tokens <= streamingMaxTokens {
                stream(x, tokens: tokens, w, into: y, workspace: workspace)
            } else if w.dtype == .bf16 && workspace.computeDType == .bf16 && hasBF16Dot {
                bf16GEMM(x, tokens: tokens, w, into: y, workspace: workspace)
            } else {
                tiled(x, tokens: tokens, w, into: y, workspace: workspace)
            }
        case .i64, .i32:
            preconditionFailure("integer tensors are never weights")
        }
    }

    /// `c[m, n] = alpha · a[m, k] · b` with `b` `[k, n]`, or `[n, k]` transposed; row strides given.
    /// For activation-by-activation products (attention scores and their weighted sums).
    static func gemm(_ a: UnsafePointer<Float>, lda: Int, rows m: Int, _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
                     columns n: Int, depth k: Int, alpha: Float, into c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
    }

    private static func sgemm(_ x: UnsafePointer<Float>, tokens: Int, _ w: UnsafePointer<Float>, rows: Int, cols: Int,
                              into y: UnsafeMutablePointer<Float>, ldy: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(rows), Int32(cols),
                    1, x, Int32(cols), w, Int32(cols), 0, y, Int32(ldy))
    }

    private static func stream(_ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix,
                               into y: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let weights = UncheckedSendable(w.base.assumingMemoryBound(to: UInt16.self))
        var input = UncheckedSendable(x)
        if w.dtype == .bf16 {
            let prepared = workspace.buffer(.preparedInput, count: tokens * w.cols)
            for t in 0..<tokens { ck_gemv_bf16_prepare(x + t * w.cols, prepared + t * w.cols, w.cols) }
            input = UncheckedSendable(UnsafePointer(prepared))
        }
        let output = UncheckedSendable(y)
        let kernel = w.dtype == .bf16 ? ck_gemv_bf16 : ck_gemv_f16
        // 64-row blocks claimed dynamically: the cores' speeds differ under outside load.
        workspace.pool.forBlocks(w.rows, block: 64) { rows in
            kernel(weights.value, w.cols, rows.lowerBound, rows.upperBound, input.value, w.cols, tokens, output.value, w.rows)
        }
    }

    public static let hasBF16Dot = ck_has_bf16_dot() != 0

    /// Both operands in bf16, f32 accumulation; rows split over the threads, each packing its
    /// own 32-row weight panels into its scratch.
    private static func bf16GEMM(_ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix,
                                 into y: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let pairs = (w.cols + 1) / 2
        let converted = UnsafeMutableRawPointer(workspace.buffer(.bf16Input, count: tokens * pairs))
            .bindMemory(to: UInt16.self, capacity: tokens * pairs * 2)
        for t in 0..<tokens {
            ck_f32_to_bf16(x + t * w.cols, converted + t * pairs * 2, w.cols)
            if w.cols % 2 == 1 { converted[t * pairs * 2 + w.cols] = 0 }
        }
        let scratchBytes = (ck_gemm_bf16_scratch(w.cols) + 63) & ~63
        let scratch = UnsafeMutableRawPointer(workspace.buffer(.gemmScratch, count: workspace.threads * scratchBytes / 4 + 16))
        let shared = UncheckedSendable((w.base.assumingMemoryBound(to: UInt16.self), UnsafePointer(converted), y, scratch))
        let panels = (w.rows + 31) / 32
        workspace.pool.forParts(workspace.threads) { part in
            let (weights, input, output, scratch) = shared.value
            let range = ShardPlan.part(panels, workspace.threads, part)
            let rows = range.lowerBound * 32..<min(w.rows, range.upperBound * 32)
            guard !rows.isEmpty else { return }
            ck_gemm_bf16(weights, w.cols, rows.lowerBound, rows.upperBound, input, tokens, output, w.rows,
                         scratch + part * scratchBytes)
        }
    }

    private static func tiled(_ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix,
                              into y: UnsafeMutablePointer<Float>, workspace: Workspace) {
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
            sgemm(x, tokens: tokens, tile, rows: count, cols: w.cols, into: y + first, ldy: w.rows)
            first += count
        }
    }
}
