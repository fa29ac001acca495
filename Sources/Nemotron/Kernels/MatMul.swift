import CKernels
import COpenBLAS

/// The one place that multiplies activations by weights: `y[T, out] = x[T, in] · Wᵀ` with W
/// `[out, in]` in its storage format. Each format family has its kernels in its own file
/// (`FloatKernels`, `HalfKernels`, `QuantKernels`); this dispatch is the only switch over formats.
public enum MatMul {
    /// Token counts up to this use the streaming kernels (weights re-read from L1/L2 per token).
    static let streamingMaxTokens = 8

    static func linear(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ context: KernelContext
    ) {
        linear([Product(x: x, tokens: tokens, w: w, y: y)], context)
    }

    /// Independent products (no product reads another's output). Those few enough tokens to
    /// stream (decode) run as one parallel dispatch (`StreamingProducts`); the others one by one.
    static func linear(_ products: [Product], _ context: KernelContext) {
        var streams: [Product] = []
        for p in products where p.tokens > 0 && p.w.rows > 0 {
            if streamingInput(p, context.policy) != nil {
                streams.append(p)
                continue
            }
            switch p.w.format {
            case .f32: FloatKernels.linear(p.x, tokens: p.tokens, p.w, into: p.y, context.workspace)
            case .bf16, .f16: HalfKernels.linear(p.x, tokens: p.tokens, p.w, into: p.y, context)
            case .int8, .int4, .fp8, .nvfp4: QuantKernels.linear(p.x, tokens: p.tokens, p.w, into: p.y, context)
            }
        }
        if !streams.isEmpty { StreamingProducts.run(streams, context) }
    }

    /// Decode batches up to this many rows of bf16 weights run a kernel that reads the weights as
    /// stored (`ck_gemv_bf16_dp` or `ck_gemv_bf16_across`), not the GEMM that packs them.
    static let bf16BatchMaxTokens = 64

    /// Products of bf16 weights under f32 compute with up to this many tokens (and more than
    /// `bf16BatchMaxTokens`) run `HalfKernels.rowsAcross` instead of widening tiles for OpenBLAS.
    static let bf16PanelMaxTokens = 128

    static let hasAVX512 = String(cString: ck_isa()) == "avx512"
    static let bf16DotIsFaster = ck_bf16_dot_is_faster() != 0

    /// How a streaming kernel reads the input of `p`, or nil when `p` is not streamed: too many
    /// tokens (a GEMM).
    static func streamingInput(_ p: Product, _ policy: ComputePolicy) -> StreamingInput? {
        if p.tokens > streamingMaxTokens {
            guard p.w.format == .bf16 && p.tokens <= bf16BatchMaxTokens && hasAVX512 else { return nil }
            // AMX tiles where bf16 compute allows rounding activations (`HalfKernels.bf16GEMM`):
            // up to 32 rows are one token block, whose weight tiles are read straight from W.
            if HalfKernels.runsOnAMX(cols: p.w.cols, policy) { return nil }
            // AVX512-BF16 dot products where they outrun f32 FMAs (and bf16 compute allows
            // rounding activations); else f32 FMAs with 16 tokens across each vector.
            return policy.usesBF16GEMM && bf16DotIsFaster ? .bf16 : .tokensAcross
        }
        switch p.w.format {
        case .f32, .f16: return .float
        case .bf16: return .bf16Order
        case .int8, .int4, .fp8, .nvfp4:
            return policy.usesInt8Activations && QuantKernels.hasInt8Kernel(p.w) ? .int8 : .float
        }
    }

    /// The streaming kernel of `p` reading `input` (made for `streamingInput(p, _)`), over a range of rows.
    static func streamingKernel(_ p: Product, input: PreparedInput) -> (Range<Int>) -> Void {
        switch (p.w.format, input) {
        case (.bf16, .bf16(let x, let stride)): return HalfKernels.batchKernel(p, input: x, stride: stride)
        case (.bf16, .tokensAcross(let x)): return HalfKernels.acrossKernel(p, input: x)
        case (.f32, .float(let x)): return FloatKernels.streamingKernel(p, input: x)
        case (.bf16, .float(let x)), (.f16, .float(let x)): return HalfKernels.streamingKernel(p, input: x)
        case (.int8, _), (.int4, _), (.fp8, _), (.nvfp4, _): return QuantKernels.streamingKernel(p, input: input)
        default: preconditionFailure("\(p.w.format) weights do not stream from \(input)")
        }
    }

    /// Floats of f32 weights per sgemm call of a prefill product: a block of rows, widened from
    /// bf16, f16 or a quantized format into the thread's own scratch first (`HalfKernels.tiled`).
    /// OpenBLAS packs all of x on every call, so small blocks lose. Measured on the 0.74 B model,
    /// pp512 under f32 compute, 2 threads (rows × 2048 columns, 3 alternations): blocks of 2¹⁷,
    /// 2¹⁸, 2¹⁹, 2²⁰ and 2²¹ floats gave 132, 153, 170, 178 and 182 tokens/s (medians); in a
    /// second run 2²⁰, 2²¹ and 2²² gave 169, 167 and 155. 2²⁰ floats is 4 MiB a thread.
    static let sgemmBlockFloats = 1 << 20

    /// Rows per sgemm call when a product's `rows` weight rows are split over `threads` threads:
    /// at most `sgemmBlockFloats / cols` (and at least 16), a multiple of 16 (the rows OpenBLAS's
    /// AVX-512 sgemm kernel takes at a time), about equal blocks, as many as a multiple of the
    /// threads, so threads of equal speed finish together.
    static func sgemmBlockRows(rows: Int, cols: Int, threads: Int) -> Int {
        let most = max(16, sgemmBlockFloats / max(cols, 1) / 16 * 16)
        let blocks = ((rows + most - 1) / most + threads - 1) / threads * threads
        return min(most, max(16, ((rows + blocks - 1) / blocks + 15) / 16 * 16))
    }

    /// `c[m, n] = alpha · a[m, k] · b` with `b` `[k, n]`, or `[n, k]` transposed; row strides given.
    /// For activation-by-activation products (attention scores and their weighted sums).
    static func gemm(
        _ a: UnsafePointer<Float>, lda: Int, rows m: Int, _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        columns n: Int, depth k: Int, alpha: Float, into c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
    }

    /// `y[T, rows] = x[T, cols] · w[rows, cols]ᵀ` through OpenBLAS, rows of y `ldy` apart.
    static func sgemm(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: UnsafePointer<Float>, rows: Int, cols: Int,
        into y: UnsafeMutablePointer<Float>, ldy: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(rows), Int32(cols),
            1, x, Int32(cols), w, Int32(cols), 0, y, Int32(ldy))
    }

    public static let hasBF16Dot = ck_has_bf16_dot() != 0
    /// AMX tiles with bf16 (Intel Sapphire Rapids and later), granted to this process by the OS.
    public static let hasAMX = ck_has_amx_bf16() != 0

    /// Whether prefill against bf16 (and fp8) weights is faster with the bf16 GEMM than with
    /// sgemm on widened tiles, the one switch `compute_dtype: auto` reads. True on AMX tiles
    /// (`ck_gemm_bf16_amx`), and where `vdpbf16ps` outruns f32 FMAs (AMD Zen 4/5). On Intel cores
    /// without AMX, whose two FMA ports match `vdpbf16ps`, OpenBLAS's sgemm on widened weights is
    /// the faster (0.74 B model, pp512, 2 threads of an Intel Xeon VM: 175 against 112 tokens/s,
    /// medians of 4 alternations; MoE bench model 1474 against 948).
    static let bf16GEMMIsFaster = hasBF16Dot && (bf16DotIsFaster || hasAMX)
}
