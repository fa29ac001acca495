import Foundation

/// Scalar activations used by the mixers (docs/architecture.md).
enum Activation {
    /// `x · sigmoid(x)`
    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + expf(-x)) }

    /// `1 / (1 + e^{-x})`
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// The kernels' softplus: `x` above 20, else `log(1 + e^x)` (mamba_ssm / torch threshold).
    @inline(__always) static func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

    /// `e^x` in 16 lanes, within 2 ulp of `expf` on [−87, 88] (ActivationTests): `x = n·ln 2 + r` with
    /// `|r| ≤ ln 2 / 2` (ln 2 split in two parts, so `n·ln2hi` is exact), `e^r` by its Taylor
    /// polynomial to degree 7 (truncation error below 5e-9), times `2^n` made in the exponent
    /// bits. Inputs are clamped to [−87.3, 88.3], so results stay normal floats (about 1e-38
    /// below; 2e38 above); NaN stays NaN.
    @inline(__always) static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // Compare-and-blend (SIMD `clamped` runs lane by lane).
        let (low, high) = (SIMD16<Float>(repeating: -87.3), SIMD16<Float>(repeating: 88.3))
        let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        // Adding 1.5·2²³ rounds x·log₂e to an integer held in the low mantissa bits (a float to
        // integer conversion of SIMD types is not vectorised).
        let shifted = SIMD16<Float>(repeating: 12_582_912).addingProduct(clamped, SIMD16(repeating: 1.442_695_04))
        let n = shifted - 12_582_912
        var r = clamped.addingProduct(n, SIMD16(repeating: -0.693_145_751_953_125))
        r = r.addingProduct(n, SIMD16(repeating: -1.428_606_765_330_187e-6))
        var p = SIMD16<Float>(repeating: 1 / 5040)
        p = SIMD16(repeating: 1 / 720).addingProduct(p, r)
        p = SIMD16(repeating: 1 / 120).addingProduct(p, r)
        p = SIMD16(repeating: 1 / 24).addingProduct(p, r)
        p = SIMD16(repeating: 1 / 6).addingProduct(p, r)
        p = SIMD16(repeating: 1 / 2).addingProduct(p, r)
        p = SIMD16(repeating: 1).addingProduct(p, r)
        p = SIMD16(repeating: 1).addingProduct(p, r)
        let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- Int32(bitPattern: Float(12_582_912).bitPattern)
        let scale = unsafeBitCast((integer &+ 127) &<< 23, to: SIMD16<Float>.self)
        return (p * scale).replacing(with: x, where: x .!= x)
    }

    /// `silu` in 16 lanes.
    @inline(__always) static func silu(_ v: SIMD16<Float>) -> SIMD16<Float> { v / (1 + exp(-v)) }

    /// `x[i] = silu(x[i])` for `count` values.
    static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(x + i).storeBytes(of: silu(v), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            x[i] = silu(x[i])
            i += 1
        }
    }

    /// `y[i] *= silu(gate[i])` for `count` values (Mamba's gate, before its grouped norm).
    static func multiplySilu(_ y: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self)
            let v = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: v * silu(g), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            y[i] *= silu(gate[i])
            i += 1
        }
    }

    /// `x[i] = e^(x[i] − shift)` for `count` values; returns their sum (softmax numerators).
    static func expSum(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        var sums = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let e = exp(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - shift)
            UnsafeMutableRawPointer(x + i).storeBytes(of: e, as: SIMD16<Float>.self)
            sums += e
            i += 16
        }
        var total = sums.sum()
        while i < count {
            x[i] = expf(x[i] - shift)
            total += x[i]
            i += 1
        }
        return total
    }

    /// `relu(x)²`, the Nemotron-H MLP and expert activation.
    @inline(__always) static func relu2(_ x: Float) -> Float {
        let r = max(x, 0)
        return r * r
    }

    /// `relu2` in place over `count` values, split over `pool`'s threads in prefill (`[T, I]`
    /// hidden rows: single-threaded it was a serial stretch between two parallel GEMMs).
    static func relu2(_ x: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
        let shared = UncheckedSendable(x)
        pool.forRanges(count, alignment: 16, minimumPerThread: 1 << 14) { range in
            let x = shared.value
            for i in range { x[i] = relu2(x[i]) }
        }
    }
}
