import COpenBLAS

/// Kernels for f32 weights: OpenBLAS sgemv for one token, sgemm for more.
enum FloatKernels {
    static func linear(_ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>) {
        let weights = w.base.assumingMemoryBound(to: Float.self)
        if tokens == 1 {
            cblas_sgemv(
                CblasRowMajor, CblasNoTrans, Int32(w.rows), Int32(w.cols), 1, weights, Int32(w.cols), x, 1, 0, y, 1)
        } else {
            MatMul.sgemm(x, tokens: tokens, weights, rows: w.rows, cols: w.cols, into: y, ldy: w.rows)
        }
    }
}
