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
        guard tokens > 0, w.rows > 0 else { return }
        switch w.format {
        case .f32: FloatKernels.linear(x, tokens: tokens, w, into: y)
        case .bf16, .f16: HalfKernels.linear(x, tokens: tokens, w, into: y, context)
        case .int8, .int4, .fp8, .nvfp4: QuantKernels.linear(x, tokens: tokens, w, into: y, context)
        }
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
}
