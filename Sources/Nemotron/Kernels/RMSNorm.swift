/// RMSNorm over rows (spec §3.2): `out[t, j] = w[j] · x[t, j] / sqrt(mean_j x[t, j]² + eps)`, f32.
enum RMSNorm {
    /// x, out: `[tokens, width]`; weight: `[width]`. `out` may alias `x`.
    static func apply(_ x: UnsafePointer<Float>, weight: [Float], eps: Float, tokens: Int, width: Int,
                      into out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in
            for t in 0..<tokens {
                ResidualNorm.scale(x + t * width, weight: w.baseAddress!, eps: eps, width: width, into: out + t * width)
            }
        }
    }

    /// `1 / sqrt(mean(x²) + eps)` over `count` values.
    static func inverseRMS(_ x: UnsafePointer<Float>, count: Int, eps: Float) -> Float {
        (sumOfSquares(x, count: count) / Float(count) + eps).squareRoot().reciprocal
    }

    static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var j = 0
        while j + 8 <= count {
            let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
            acc.addProduct(v, v)
            j += 8
        }
        var sum = acc.sum()
        while j < count {
            sum += x[j] * x[j]
            j += 1
        }
        return sum
    }
}

extension Float {
    var reciprocal: Float { 1 / self }
}
