/// RMSNorm over rows (docs/architecture.md): `out[t, j] = w[j] · x[t, j] / sqrt(mean_j x[t, j]² + eps)`, f32.
enum RMSNorm {
    /// x, out: `[tokens, width]`; weight: `[width]`. `out` may alias `x`.
    static func apply(
        _ x: UnsafePointer<Float>, weight: [Float], eps: Float, tokens: Int, width: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        weight.withUnsafeBufferPointer { w in
            for t in 0..<tokens {
                normalize(x + t * width, weight: w.baseAddress!, eps: eps, width: width, into: out + t * width)
            }
        }
    }

    /// `apply` with the rows split over `pool`'s threads.
    static func apply(
        _ x: UnsafePointer<Float>, weight: [Float], eps: Float, tokens: Int, width: Int,
        into out: UnsafeMutablePointer<Float>, pool: ThreadPool
    ) {
        let shared = UncheckedSendable((x, out))
        pool.forRanges(tokens) { rows in
            let (x, out) = shared.value
            apply(
                x + rows.lowerBound * width, weight: weight, eps: eps, tokens: rows.count, width: width,
                into: out + rows.lowerBound * width)
        }
    }

    /// One row: `out[j] = w[j] · (x[j] · inverseRMS(x))`. `out` may alias `x`.
    static func normalize(
        _ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, eps: Float, width: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        scale(x, weight: w, inverse: inverseRMS(x, count: width, eps: eps), width: width, into: out)
    }

    /// `out[j] = w[j] · (x[j] · inverse)` for `width` values, 8 lanes at a time (lanes do not
    /// change per-element rounding). `out` may alias `x`.
    static func scale(
        _ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, inverse: Float, width: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        let inverseV = SIMD8<Float>(repeating: inverse)
        var j = 0
        while j + 8 <= width {
            let product =
                UnsafeRawPointer(w + j).loadUnaligned(as: SIMD8<Float>.self)
                * (UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) * inverseV)
            UnsafeMutableRawPointer(out + j).storeBytes(of: product, as: SIMD8<Float>.self)
            j += 8
        }
        while j < width {
            out[j] = w[j] * (x[j] * inverse)
            j += 1
        }
    }

    /// `1 / sqrt(mean(x²) + eps)` over `count` values.
    static func inverseRMS(_ x: UnsafePointer<Float>, count: Int, eps: Float) -> Float {
        inverseRMS(sumOfSquares: sumOfSquares(x, count: count), count: count, eps: eps)
    }

    /// `1 / sqrt(sumOfSquares / count + eps)`: the same from a sum of squares known already.
    static func inverseRMS(sumOfSquares: Float, count: Int, eps: Float) -> Float {
        (sumOfSquares / Float(count) + eps).squareRoot().reciprocal
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
