/// The residual-add + RMSNorm epilogue of a block-boundary reduction, in the forms the
/// strategies need. Fused and unfused paths perform the same float operations in the same
/// order per element (`s = ((x₀ + x₁) + x₂) …`, `r = residual + s`, the row's sum of squares,
/// `w · (r · scale)`), so their results are bitwise equal for a given reduction order.
/// Vectorised over 8 lanes; lanes do not change per-element rounding.
public enum ResidualNorm {
    /// Per row of `width`: `residual += sum; normed = RMSNorm(residual)`, one pass over memory
    /// (a row stays in L1 between its add, its scaling and, when `quantized` is given (its rows
    /// being `normed`'s), its quantization to int8).
    public static func addAndNormalizeEachRow(
        _ sum: UnsafePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
        rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>, quantized: QuantizedRows? = nil
    ) {
        weight.withUnsafeBufferPointer { w in
            for row in 0..<rows {
                let r = residual + row * width
                add(sum + row * width, into: r, count: width)
                RMSNorm.normalize(r, weight: w.baseAddress!, eps: eps, width: width, into: normed + row * width)
                quantized?.quantize(row: row)
            }
        }
    }

    /// Per row in `rows` of `width`: `residual += Σ_k sources[k]` (rank order) and
    /// `normed = RMSNorm(residual)`, reading each source once; then the row quantized into
    /// `quantized` (whose rows are `normed`'s) when given.
    public static func sumAddAndNormalizeEachRow(
        _ sources: [UnsafePointer<Float>], residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
        rows: Range<Int>, width: Int, into normed: UnsafeMutablePointer<Float>, quantized: QuantizedRows? = nil
    ) {
        sources.withUnsafeBufferPointer { sources in
            weight.withUnsafeBufferPointer { w in
                for row in rows {
                    let offset = row * width
                    addSum(sources, offset: offset, count: width, into: residual + offset)
                    RMSNorm.normalize(
                        residual + offset, weight: w.baseAddress!, eps: eps, width: width, into: normed + offset)
                    quantized?.quantize(row: row)
                }
            }
        }
    }

    /// `out[i] = Σ_k sources[k][i]` in rank order for i in `range`.
    public static func sum(_ sources: [UnsafePointer<Float>], range: Range<Int>, into out: UnsafeMutablePointer<Float>)
    {
        sources.withUnsafeBufferPointer { sources in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                store(total(sources, i), out + i)
                i += 8
            }
            while i < range.upperBound {
                var s = sources[0][i]
                for k in 1..<sources.count { s += sources[k][i] }
                out[i] = s
                i += 1
            }
        }
    }

    /// The unfused boundary: `residual += sum` over all rows, then RMSNorm as a separate pass.
    /// Given `pool`, rows are split over its threads (prefill: `[T, H]`), each range taking both
    /// passes; every row's arithmetic is the same either way.
    public static func addThenNormInTwoPasses(
        _ sum: UnsafePointer<Float>, residual: UnsafeMutablePointer<Float>, weight: [Float], eps: Float,
        rows: Int, width: Int, into normed: UnsafeMutablePointer<Float>, pool: ThreadPool? = nil
    ) {
        let shared = UncheckedSendable((sum, residual, normed))
        let passes = { (range: Range<Int>) in
            let (sum, residual, normed) = shared.value
            let offset = range.lowerBound * width
            add(sum + offset, into: residual + offset, count: range.count * width)
            RMSNorm.apply(
                residual + offset, weight: weight, eps: eps, tokens: range.count, width: width, into: normed + offset)
        }
        if let pool { pool.forRanges(rows, passes) } else { passes(0..<rows) }
    }

    // MARK: - Vector pieces

    /// `target[i] += source[i]`
    static func add(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            store(load(target + i) + load(source + i), target + i)
            i += 8
        }
        while i < count {
            target[i] += source[i]
            i += 1
        }
    }

    /// `target[i] = target[i] + Σ_k sources[k][offset + i]`
    private static func addSum(
        _ sources: UnsafeBufferPointer<UnsafePointer<Float>>, offset: Int, count: Int,
        into target: UnsafeMutablePointer<Float>
    ) {
        var i = 0
        while i + 8 <= count {
            store(load(target + i) + total(sources, offset + i), target + i)
            i += 8
        }
        while i < count {
            var s = sources[0][offset + i]
            for k in 1..<sources.count { s += sources[k][offset + i] }
            target[i] += s
            i += 1
        }
    }

    @inline(__always) private static func total(_ sources: UnsafeBufferPointer<UnsafePointer<Float>>, _ i: Int)
        -> SIMD8<Float>
    {
        var s = load(sources[0] + i)
        for k in 1..<sources.count { s += load(sources[k] + i) }
        return s
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}
