/// Kernels for f32 weights (MoE routers; f32 checkpoints): a streaming dot-product kernel for few
/// tokens (decode), single-threaded sgemm calls on blocks of rows the pool's threads claim for more.
enum FloatKernels {
    static func linear(
        _ x: UnsafePointer<Float>, tokens: Int, _ w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
        _ workspace: Workspace
    ) {
        let blockRows = MatMul.sgemmBlockRows(rows: w.rows, cols: w.cols, threads: workspace.threads)
        let shared = UncheckedSendable((w.base.assumingMemoryBound(to: Float.self), y))
        workspace.pool.forBlocks(w.rows, block: blockRows) { rows in
            let (weights, y) = shared.value
            MatMul.sgemm(
                x, tokens: tokens, weights + rows.lowerBound * w.cols, rows: rows.count, cols: w.cols,
                into: y + rows.lowerBound, ldy: w.rows)
        }
    }

    /// The streaming kernel of `p` over a range of its rows: each row's dot product with every token.
    static func streamingKernel(_ p: Product, input: UnsafePointer<Float>) -> (Range<Int>) -> Void {
        let (cols, ldy) = (p.w.cols, p.w.rows)
        let shared = UncheckedSendable((p.w.base.assumingMemoryBound(to: Float.self), input, p.y))
        return { rows in
            let (weights, x, y) = shared.value
            for r in rows {
                for t in 0..<p.tokens { y[t * ldy + r] = dot(weights + r * cols, x + t * cols, count: cols) }
            }
        }
    }

    /// `Σ a[i]·b[i]` in two 16-lane chains, then the tail (a scalar loop does not vectorise: float
    /// sums are not reassociated).
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = SIMD16<Float>()
        var s1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= count {
            s0.addProduct(load(a + i), load(b + i))
            s1.addProduct(load(a + i + 16), load(b + i + 16))
            i += 32
        }
        if i + 16 <= count {
            s0.addProduct(load(a + i), load(b + i))
            i += 16
        }
        var total = (s0 + s1).sum()
        while i < count {
            total += a[i] * b[i]
            i += 1
        }
        return total
    }

    @inline(__always) private static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
}
