/// The residual-add + RMSNorm epilogue of a block-boundary reduction, in the forms the
/// strategies need. Fused and unfused paths perform the same float operations in the same
/// order (`r = residual + Σ`, the row's sum of squares, `w · (r · scale)`), so their results
/// are bitwise equal for a given reduction order.
public enum ResidualNorm {
    /// Per row of `width`: `residual += sum; normed = RMSNorm(residual)`. One pass over memory
    /// (a row stays in L1 between its add and its scaling).
    public static func addNorm(_ sum: UnsafePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
                               rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>) {
        for row in 0..<rows {
            let r = residual + row * width, s = sum + row * width
            for j in 0..<width { r[j] += s[j] }
            scale(r, weight: weight, eps: eps, width: width, into: normed + row * width)
        }
    }

    /// Per row of `width`: `residual += Σ_k sources[k]` (summed in rank order k = 0, 1, …) and
    /// `normed = RMSNorm(residual)`, reading each source once.
    public static func sumAddNorm(_ sources: [UnsafePointer<Float>], residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
                                  rows: Range<Int>, width: Int, into normed: UnsafeMutablePointer<Float>) {
        for row in rows {
            let r = residual + row * width
            let offset = row * width
            for j in 0..<width { r[j] += sumAt(sources, offset + j) }
            scale(r, weight: weight, eps: eps, width: width, into: normed + row * width)
        }
    }

    /// `out[i] = Σ_k sources[k][i]` in rank order for i in `range`.
    public static func sum(_ sources: [UnsafePointer<Float>], range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for i in range { out[i] = sumAt(sources, i) }
    }

    /// The unfused boundary: `residual += sum` over all rows, then RMSNorm as a separate pass.
    public static func addThenNorm(_ sum: UnsafePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
                                   rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>) {
        for i in 0..<rows * width { residual[i] += sum[i] }
        RMSNorm.apply(residual, weight: weight, eps: eps, tokens: rows, width: width, into: normed)
    }

    @inline(__always) private static func sumAt(_ sources: [UnsafePointer<Float>], _ i: Int) -> Float {
        var s = sources[0][i]
        for k in 1..<sources.count { s += sources[k][i] }
        return s
    }

    @inline(__always) private static func scale(_ r: UnsafePointer<Float>, weight: [Float], eps: Float, width: Int,
                                                into out: UnsafeMutablePointer<Float>) {
        let inverse = RMSNorm.inverseRMS(r, count: width, eps: eps)
        weight.withUnsafeBufferPointer { w in
            for j in 0..<width { out[j] = w[j] * (r[j] * inverse) }
        }
    }
}
