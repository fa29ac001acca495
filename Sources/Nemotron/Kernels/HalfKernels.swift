import CKernels

/// Kernels for 16-bit float weights (bf16, f16):
/// - few tokens (decode): CKernels streams each weight row once, widening in registers, in
///   64-row blocks the threads claim (`StreamingProducts`). Bandwidth-bound: bytes read ≈ weight bytes.
/// - many tokens, bf16 weights, bf16 compute on a CPU with AVX512-BF16: both operands in bf16,
///   f32 accumulation.
/// - many tokens otherwise: each thread widens a block of rows into its own f32 scratch, then
///   multiplies it with single-threaded sgemm, so only one block per thread is widened at a time.
enum HalfKernels {
    /// Half the bf16 elements of a dequantized tile for the bf16 GEMM (`QuantKernels`): 8 MiB a tile.
    static let tileFloats = 1 << 21

    /// Many tokens (prefill); few tokens stream through `StreamingProducts`.
    static func linear(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ context: KernelContext
    ) {
        if w.format == .bf16 && context.policy.usesBF16GEMM {
            bf16GEMM(
                x, tokens: tokens, weights: w.base.assumingMemoryBound(to: UInt16.self), rows: w.rows, cols: w.cols,
                into: y, ldy: w.rows, context)
        } else if w.format == .bf16 && MatMul.hasAVX512 && tokens <= MatMul.bf16PanelMaxTokens {
            rowsAcross(x, tokens: tokens, w, into: y, context.workspace)
        } else {
            tiled(x, tokens: tokens, w, into: y, context.workspace)
        }
    }

    /// f32 FMAs with weight rows across the lanes (`ck_gemm_bf16_rows`), for products of a few
    /// dozen to a hundred-odd tokens: each thread claims 48-row panels a few at a time, widens and
    /// transposes them 128 columns at a time into its own scratch, and runs every token past them.
    static func rowsAcross(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ workspace: Workspace
    ) {
        let scratchBytes = (ck_gemm_bf16_rows_scratch() + 63) & ~63
        let scratch = UncheckedSendable(workspace.alignedBytes(.gemmScratch, count: workspace.threads * scratchBytes))
        let shared = UncheckedSendable((w.base.assumingMemoryBound(to: UInt16.self), x, y))
        let panel = Int(CK_GEMM_ROWS_PANEL)
        // Blocks of 2 panels: more blocks than threads for any matrix of a few hundred rows.
        workspace.pool.forBlocksWithPart((w.rows + panel - 1) / panel, block: 2) { part, range in
            let (weights, x, y) = shared.value
            ck_gemm_bf16_rows(
                weights, w.cols, range.lowerBound * panel, min(w.rows, range.upperBound * panel), x, tokens, y,
                w.rows, scratch.value + part * scratchBytes)
        }
    }

    /// One activation row `[cols]` in the order the bf16 streaming kernel reads it.
    static func prepareBF16Input(_ x: UnsafePointer<Float>, into prepared: UnsafeMutablePointer<Float>, cols: Int) {
        ck_gemv_bf16_prepare(x, prepared, cols)
    }

    /// Elements per bf16 activation row for `ck_gemv_bf16_dp`: whole 32-column steps.
    static func bf16RowStride(_ cols: Int) -> Int { (cols + 31) / 32 * 32 }

    /// One activation row `[cols]` rounded to bf16, zero-padded to `stride` elements.
    static func roundToBF16(_ x: UnsafePointer<Float>, into row: UnsafeMutablePointer<UInt16>, cols: Int, stride: Int) {
        ck_f32_to_bf16(x, row, cols)
        (row + cols).initialize(repeating: 0, count: stride - cols)
    }

    /// The kernel of a decode batch `p` (bf16 weights) over a range of its rows: both operands in
    /// bf16, AVX512-BF16 dot products, weights read as stored.
    static func batchKernel(_ p: Product, input: UnsafePointer<UInt16>, stride: Int) -> (Range<Int>) -> Void {
        let w = p.w
        let shared = UncheckedSendable((w.base.assumingMemoryBound(to: UInt16.self), input, p.y))
        return { rows in
            let (weights, x, y) = shared.value
            ck_gemv_bf16_dp(weights, w.cols, rows.lowerBound, rows.upperBound, x, stride, p.tokens, y, w.rows)
        }
    }

    /// The kernel of a decode batch `p` (bf16 weights) over a range of its rows: f32 FMAs, 16
    /// tokens across each vector (`input` laid out by `ck_tokens_across`), weights read as stored.
    static func acrossKernel(_ p: Product, input: UnsafePointer<Float>) -> (Range<Int>) -> Void {
        let w = p.w
        let shared = UncheckedSendable((w.base.assumingMemoryBound(to: UInt16.self), input, p.y))
        return { rows in
            let (weights, x, y) = shared.value
            ck_gemv_bf16_across(weights, w.cols, rows.lowerBound, rows.upperBound, x, p.tokens, y, w.rows)
        }
    }

    /// The streaming kernel of `p` over a range of its rows: each weight row read once and widened
    /// in registers. bf16 reads `x` prepared by `prepareBF16Input` (up to 8 tokens); f16 reads it as it is.
    static func streamingKernel(_ p: Product, input: UnsafePointer<Float>) -> (Range<Int>) -> Void {
        let w = p.w
        let kernel = w.format == .f16 ? ck_gemv_f16 : ck_gemv_bf16
        let shared = UncheckedSendable((w.base.assumingMemoryBound(to: UInt16.self), input, p.y))
        return { rows in
            let (weights, x, y) = shared.value
            kernel(weights, w.cols, rows.lowerBound, rows.upperBound, x, w.cols, p.tokens, y, w.rows)
        }
    }

    /// Whether `bf16GEMM` multiplies a product of `cols` columns on AMX tiles: the policy allows
    /// them and the columns are whole 32-column tile steps.
    static func runsOnAMX(cols: Int, _ policy: ComputePolicy) -> Bool { policy.usesAMX && cols % 32 == 0 }

    /// `y[t·ldy + r] = Σ_k weights[r, k] · x[t, k]` for a bf16 `[rows, cols]` matrix: both
    /// operands in bf16, f32 accumulation; rows split over the threads in 32-row panels. On AMX
    /// tiles where the CPU has them (and the policy allows), else AVX512-BF16 dot products on
    /// weight panels each thread packs into its scratch.
    static func bf16GEMM(
        _ x: UnsafePointer<Float>, tokens: Int, weights: UnsafePointer<UInt16>, rows: Int, cols: Int,
        into y: UnsafeMutablePointer<Float>, ldy: Int, _ context: KernelContext
    ) {
        if runsOnAMX(cols: cols, context.policy) {
            return amxGEMM(x, tokens: tokens, weights: weights, rows: rows, cols: cols, into: y, ldy: ldy, context)
        }
        let workspace = context.workspace
        let pairs = (cols + 1) / 2
        let converted = UnsafeMutableRawPointer(workspace.buffer(.bf16Input, count: tokens * pairs))
            .bindMemory(to: UInt16.self, capacity: tokens * pairs * 2)
        let rounding = UncheckedSendable((x, converted))
        // Tokens split over the threads, as the AMX path's packing (a serial stretch otherwise).
        workspace.pool.forRanges(tokens) { rows in
            let (x, converted) = rounding.value
            for t in rows {
                ck_f32_to_bf16(x + t * cols, converted + t * pairs * 2, cols)
                if cols % 2 == 1 { converted[t * pairs * 2 + cols] = 0 }
            }
        }
        let shared = UncheckedSendable((weights, UnsafePointer(converted), y))
        forPanels(rows: rows, scratchBytes: ck_gemm_bf16_scratch(cols), workspace) { rows, scratch in
            let (weights, input, output) = shared.value
            ck_gemm_bf16(weights, cols, rows.lowerBound, rows.upperBound, input, tokens, output, ldy, scratch)
        }
    }

    /// `bf16GEMM` on AMX tiles (`ck_gemm_bf16_amx`): the activations are rounded to bf16 and
    /// laid out in 32-token blocks of column pairs once per product (pairs split over the
    /// threads), then each thread multiplies its panels.
    static func amxGEMM(
        _ x: UnsafePointer<Float>, tokens: Int, weights: UnsafePointer<UInt16>, rows: Int, cols: Int,
        into y: UnsafeMutablePointer<Float>, ldy: Int, _ context: KernelContext
    ) {
        let workspace = context.workspace
        let words = ck_amx_packed_words(tokens, cols)
        let packed = workspace.alignedBytes(.bf16Input, count: words * 4).bindMemory(to: UInt32.self, capacity: words)
        let shared = UncheckedSendable((x, weights, packed, y))
        // 16 pairs (one conversion) per step.
        workspace.pool.forRanges(cols / 2, alignment: 16, minimumPerThread: 64) { range in
            let (x, _, packed, _) = shared.value
            ck_amx_pack_x(x, tokens, cols, range.lowerBound, range.upperBound, packed)
        }
        forPanels(rows: rows, scratchBytes: ck_amx_scratch(cols), workspace) { rows, scratch in
            let (_, weights, packed, output) = shared.value
            ck_gemm_bf16_amx(weights, cols, rows.lowerBound, rows.upperBound, packed, tokens, output, ldy, scratch)
        }
    }

    /// Splits `rows` over the threads in whole 32-row panels (a part may get none) and runs
    /// `body` with each part's rows and its own 64-byte-aligned `scratchBytes` bytes.
    private static func forPanels(
        rows: Int, scratchBytes: Int, _ workspace: Workspace,
        _ body: @escaping (Range<Int>, UnsafeMutableRawPointer) -> Void
    ) {
        let scratchBytes = (scratchBytes + 63) & ~63
        let scratch = UncheckedSendable(workspace.alignedBytes(.gemmScratch, count: workspace.threads * scratchBytes))
        let panels = (rows + 31) / 32
        workspace.pool.forParts(workspace.threads) { part in
            let range = Partition.part(panels, workspace.threads, part)
            guard !range.isEmpty else { return }
            body(range.lowerBound * 32..<min(rows, range.upperBound * 32), scratch.value + part * scratchBytes)
        }
    }

    /// Widens (dequantizes) blocks of rows (`MatMul.sgemmBlockRows`) into f32 scratch, then sgemm
    /// against each block. The threads claim blocks one at a time (the cores' speeds differ under
    /// outside load); each widens its block into its own slice of the `.weightTile` slot and calls
    /// OpenBLAS, single-threaded, writing y's columns of those rows (`ldy` = `w.rows`).
    static func tiled(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ workspace: Workspace
    ) {
        let blockRows = MatMul.sgemmBlockRows(rows: w.rows, cols: w.cols, threads: workspace.threads)
        let tile = workspace.buffer(.weightTile, count: workspace.threads * blockRows * w.cols)
        let shared = UncheckedSendable((tile, y))
        workspace.pool.forBlocksWithPart(w.rows, block: blockRows) { part, range in
            let (tile, y) = shared.value
            let own = tile + part * blockRows * w.cols
            // One thread gets all rows in one range.
            for first in stride(from: range.lowerBound, to: range.upperBound, by: blockRows) {
                let count = min(blockRows, range.upperBound - first)
                w.rows(from: first, count: count, into: own)
                MatMul.sgemm(x, tokens: tokens, own, rows: count, cols: w.cols, into: y + first, ldy: w.rows)
            }
        }
    }
}
