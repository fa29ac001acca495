import CKernels

/// Kernels for quantized weights (int8, int4, fp8, nvfp4; layouts in `WeightFormat`):
/// - few tokens (decode): a GEMV per format streams each weight row once and dequantizes it in
///   registers, in 64-row blocks the threads claim (`StreamingProducts`). Bytes read ≈ the
///   quantized weight's bytes.
/// - many tokens (prefill), int8 and int4 weights under `compute_dtype: int8` on a CPU with
///   AVX512-VNNI: activations quantized to int8 per block of 32 once per product, then integer
///   block dots against the weights (`ck_gemm_q8_q8`, `ck_gemm_q4_q8`), ~4× the bf16 GEMM's rate.
/// - many tokens otherwise: each thread dequantizes blocks of rows to f32 and multiplies them with
///   single-threaded sgemm (`HalfKernels.tiled`; exact: dequantized weights × f32 activations, as
///   `compute_dtype: f32` promises), or, under `compute_dtype: bf16` on a CPU with AVX512-BF16, a
///   tile of rows is rounded to bf16 for the bf16 GEMM, one tile at a time.
enum QuantKernels {
    /// Many tokens (prefill); few tokens stream through `StreamingProducts`.
    static func linear(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ context: KernelContext
    ) {
        if context.policy.usesInt8Activations && hasInt8GEMM(w) {
            int8GEMM(x, tokens: tokens, w, into: y, context.workspace)
        } else if context.policy.usesBF16GEMM {
            bf16Tiled(x, tokens: tokens, w, into: y, context)
        } else {
            HalfKernels.tiled(x, tokens: tokens, w, into: y, context.workspace)
        }
    }

    /// `y[t·ldy + r] = Σ_k w[r, k] · x[t·ldx + k]` for rows `rows` and tokens t < ntok: the exact
    /// path (each weight dequantized in f32, f32 activations), CKernels' SIMD code.
    static func gemv(
        _ w: WeightMatrix, rows: Range<Int>, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int,
        _ y: UnsafeMutablePointer<Float>, ldy: Int
    ) {
        let (r0, r1, cols) = (rows.lowerBound, rows.upperBound, w.cols)
        switch w.format {
        case .int8:
            ck_gemv_q8(
                w.base.assumingMemoryBound(to: Int8.self), blockScales(w, UInt16.self), cols, r0, r1, x, ldx, tokens,
                y, ldy)
        case .int4:
            ck_gemv_q4(
                w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt16.self), cols, r0, r1, x, ldx, tokens,
                y, ldy)
        case .fp8:
            ck_gemv_fp8(
                w.base.assumingMemoryBound(to: UInt8.self), w.scales.tensorScale, cols, r0, r1, x, ldx, tokens, y, ldy)
        case .nvfp4:
            ck_gemv_nvfp4(
                w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt8.self), w.scales.tensorScale, cols, r0,
                r1, x, ldx, tokens, y, ldy)
        case .f32, .bf16, .f16:
            preconditionFailure("\(w.format) is not a quantized format")
        }
    }

    /// Rows `rows` of `w` dequantized to f32 into `out` (`rows.count · cols` floats), bit for bit
    /// the weights the exact GEMV multiplies.
    static func dequantizeRows(_ w: WeightMatrix, _ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let (r0, r1, cols) = (rows.lowerBound, rows.upperBound, w.cols)
        switch w.format {
        case .int8:
            ck_dequant_rows_q8(
                w.base.assumingMemoryBound(to: Int8.self), blockScales(w, UInt16.self), cols, r0, r1, out)
        case .int4:
            ck_dequant_rows_q4(
                w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt16.self), cols, r0, r1, out)
        case .fp8:
            ck_dequant_rows_fp8(w.base.assumingMemoryBound(to: UInt8.self), w.scales.tensorScale, cols, r0, r1, out)
        case .nvfp4:
            ck_dequant_rows_nvfp4(
                w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt8.self), w.scales.tensorScale, cols,
                r0, r1, out)
        case .f32, .bf16, .f16:
            preconditionFailure("\(w.format) is not a quantized format")
        }
    }

    /// The same rows rounded to bf16 (raw bits), for the bf16 GEMM.
    static func dequantizeRowsBF16(_ w: WeightMatrix, _ rows: Range<Int>, into out: UnsafeMutablePointer<UInt16>) {
        let (r0, r1, cols) = (rows.lowerBound, rows.upperBound, w.cols)
        switch w.format {
        case .int8:
            ck_dequant_rows_q8_bf16(
                w.base.assumingMemoryBound(to: Int8.self), blockScales(w, UInt16.self), cols, r0, r1, out)
        case .int4:
            ck_dequant_rows_q4_bf16(
                w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt16.self), cols, r0, r1, out)
        case .fp8:
            ck_dequant_rows_fp8_bf16(
                w.base.assumingMemoryBound(to: UInt8.self), w.scales.tensorScale, cols, r0, r1, out)
        case .nvfp4:
            ck_dequant_rows_nvfp4_bf16(
                w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt8.self), w.scales.tensorScale, cols,
                r0, r1, out)
        case .f32, .bf16, .f16:
            preconditionFailure("\(w.format) is not a quantized format")
        }
    }

    private static func blockScales<T>(_ w: WeightMatrix, _ type: T.Type) -> UnsafePointer<T> {
        guard let base = w.scales.blockBase else { preconditionFailure("\(w.format) weight without block scales") }
        return base.assumingMemoryBound(to: T.self)
    }

    /// Whether `w` has an int8-activation GEMV: int8, int4 and nvfp4 with whole blocks of 32 inputs.
    static func hasInt8Kernel(_ w: WeightMatrix) -> Bool {
        [.int8, .int4, .nvfp4].contains(w.format) && w.cols % 32 == 0
    }

    /// The streaming kernel of `p` over a range of its rows: integer dot products against int8
    /// packages of its input, or the exact GEMV (dequantized weights × f32 activations).
    static func streamingKernel(_ p: Product, input: PreparedInput) -> (Range<Int>) -> Void {
        let w = p.w
        switch input {
        case .float(let x):
            let shared = UncheckedSendable((x, p.y))
            return { rows in
                let (x, y) = shared.value
                gemv(w, rows: rows, x, ldx: w.cols, tokens: p.tokens, y, ldy: w.rows)
            }
        case .bf16, .tokensAcross: preconditionFailure("quantized weights read f32 rows or int8 packages")
        case .int8(let packages):
            let shared = UncheckedSendable((UnsafeRawPointer(packages.base), p.y))
            let stride = packages.stride
            return { rows in
                let (xq, y) = shared.value
                let (r0, r1, cols) = (rows.lowerBound, rows.upperBound, w.cols)
                switch w.format {
                case .int8:
                    ck_gemv_q8_q8(
                        w.base.assumingMemoryBound(to: Int8.self), blockScales(w, UInt16.self), cols, r0, r1, xq,
                        stride, p.tokens, y, w.rows)
                case .int4:
                    ck_gemv_q4_q8(
                        w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt16.self), cols, r0, r1, xq,
                        stride, p.tokens, y, w.rows)
                case .nvfp4:
                    ck_gemv_nvfp4_q8(
                        w.base.assumingMemoryBound(to: UInt8.self), blockScales(w, UInt8.self), w.scales.tensorScale,
                        cols, r0, r1, xq, stride, p.tokens, y, w.rows)
                default: preconditionFailure("\(w.format) has no int8-activation kernel")
                }
            }
        }
    }

    /// Whether `w` takes the int8 prefill GEMM: int8 or int4 with whole blocks of 32 inputs, on a
    /// CPU (and thread ISA cap) with AVX512-VNNI. Elsewhere prefill keeps the bf16 or f32 tiles.
    static func hasInt8GEMM(_ w: WeightMatrix) -> Bool {
        (w.format == .int8 || w.format == .int4) && w.cols % 32 == 0 && ck_q8_gemm_available() != 0
    }

    /// Prefill against int8 / int4 weights with int8 activations: the `tokens` rows of x quantized
    /// per block of 32 into tiles of `ck_q8_gemm_tile_tokens()` tokens (shared by the threads),
    /// then 32-row weight panels claimed by the threads one at a time (the cores' speeds differ
    /// under outside load), each packed into the thread's scratch and multiplied with every tile.
    static func int8GEMM(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ workspace: Workspace
    ) {
        let (rows, cols) = (w.rows, w.cols)
        let bits: Int32 = w.format == .int4 ? 4 : 8
        let tileTokens = ck_q8_gemm_tile_tokens()
        let tiles = (tokens + tileTokens - 1) / tileTokens
        let input = workspace.alignedBytes(.quantizedGEMMInput, count: ck_q8_gemm_act_bytes(tokens, cols))
        let scratchBytes = (ck_q8_gemm_scratch(cols) + 63) & ~63
        let scratch = UnsafeMutableRawPointer(
            workspace.buffer(.gemmScratch, count: workspace.threads * scratchBytes / 4 + 16))
        let shared = UncheckedSendable((input, scratch, y))
        workspace.pool.forRanges(tiles) { range in
            ck_q8_gemm_quantize(x, cols, tokens, cols, bits, range.lowerBound, range.upperBound, shared.value.0)
        }
        let scales = blockScales(w, UInt16.self)
        workspace.pool.forBlocksWithPart(rows, block: 32) { part, range in
            let (input, scratch, y) = shared.value
            let (r0, r1, own) = (range.lowerBound, range.upperBound, scratch + part * scratchBytes)
            if bits == 4 {
                ck_gemm_q4_q8(
                    w.base.assumingMemoryBound(to: UInt8.self), scales, cols, r0, r1, input, tokens, y, rows, own)
            } else {
                ck_gemm_q8_q8(
                    w.base.assumingMemoryBound(to: Int8.self), scales, cols, r0, r1, input, tokens, y, rows, own)
            }
        }
    }

    /// Dequantized tiles rounded to bf16, then the bf16 GEMM (activations rounded to bf16 too).
    private static func bf16Tiled(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ context: KernelContext
    ) {
        let (cols, workspace) = (w.cols, context.workspace)
        // Whole 32-row panels of the GEMM, about 8 MiB of bf16 per tile.
        let tileRows = max(32, min(w.rows, 2 * HalfKernels.tileFloats / max(cols, 1)) / 32 * 32)
        let tile = UnsafeMutableRawPointer(workspace.buffer(.bf16WeightTile, count: (tileRows * cols + 1) / 2))
            .bindMemory(to: UInt16.self, capacity: tileRows * cols)
        let shared = UncheckedSendable(tile)
        var first = 0
        while first < w.rows {
            let count = min(tileRows, w.rows - first)
            let start = first
            workspace.pool.forRanges(count, minimumPerThread: 8) { rows in
                dequantizeRowsBF16(
                    w, start + rows.lowerBound..<start + rows.upperBound, into: shared.value + rows.lowerBound * cols)
            }
            HalfKernels.bf16GEMM(
                x, tokens: tokens, weights: UnsafePointer(tile), rows: count, cols: cols, into: y + first, ldy: w.rows,
                context)
            first += count
        }
    }
}
