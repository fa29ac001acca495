/// Plain reference kernels for the quantized formats, with the C kernel API's signatures and
/// semantics (`ck_gemv_{q8,q4,fp8,nvfp4}`, `ck_dequant_rows_{q8,q4,fp8,nvfp4}`): for rows r in
/// `[r0, r1)` and tokens t < ntok, `y[t·ldy + r] = Σ_k w[r, k] · x[t·ldx + k]`, where `w[r, k]`
/// is the dequantized weight (`WeightFormat`'s formulas, each weight rounded to f32 before it
/// multiplies) and sums run in f32 in order of k. The dequantizers write rows `[r0, r1)` as
/// `[(r1 − r0), cols]` floats. They serve until the SIMD kernels land and then remain their
/// naive twins in tests.
enum QuantReference {
    // MARK: - Element decoding

    /// E4M3FN (1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no infinities, 0x7F/0xFF NaN).
    static let e4m3Values: [Float] = (0..<256).map { e4m3(UInt8($0)) }

    static func e4m3(_ byte: UInt8) -> Float {
        let sign: Float = byte & 0x80 != 0 ? -1 : 1
        let exponent = Int(byte >> 3) & 0xF
        let mantissa = Float(byte & 0x7)
        if exponent == 0xF && byte & 0x7 == 0x7 { return .nan }
        if exponent == 0 { return sign * mantissa * 0x1p-9 }
        return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }

    /// E2M1 magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6} for codes 0...7; bit 3 is the sign.
    static let e2m1Values: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    @inline(__always)
    static func f16(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    // MARK: - GEMV

    static func gemvQ8(
        _ w: UnsafePointer<Int8>, _ scales: UnsafePointer<UInt16>, _ cols: Int, _ r0: Int, _ r1: Int,
        _ x: UnsafePointer<Float>, _ ldx: Int, _ ntok: Int, _ y: UnsafeMutablePointer<Float>, _ ldy: Int
    ) {
        gemv(cols, r0, r1, x, ldx, ntok, y, ldy, block: 32) { r, k, scale in
            Float(w[r * cols + k]) * scale
        } scale: { r, b in
            f16(scales[r * (cols / 32) + b])
        }
    }

    static func gemvQ4(
        _ w: UnsafePointer<UInt8>, _ scales: UnsafePointer<UInt16>, _ cols: Int, _ r0: Int, _ r1: Int,
        _ x: UnsafePointer<Float>, _ ldx: Int, _ ntok: Int, _ y: UnsafeMutablePointer<Float>, _ ldy: Int
    ) {
        gemv(cols, r0, r1, x, ldx, ntok, y, ldy, block: 32) { r, k, scale in
            Float(Int(nibble(w + r * (cols / 2), k)) - 8) * scale
        } scale: { r, b in
            f16(scales[r * (cols / 32) + b])
        }
    }

    static func gemvFP8(
        _ w: UnsafePointer<UInt8>, _ scale: Float, _ cols: Int, _ r0: Int, _ r1: Int,
        _ x: UnsafePointer<Float>, _ ldx: Int, _ ntok: Int, _ y: UnsafeMutablePointer<Float>, _ ldy: Int
    ) {
        e4m3Values.withUnsafeBufferPointer { table in
            gemv(cols, r0, r1, x, ldx, ntok, y, ldy, block: cols) { r, k, scale in
                table[Int(w[r * cols + k])] * scale
            } scale: { _, _ in
                scale
            }
        }
    }

    static func gemvNVFP4(
        _ w: UnsafePointer<UInt8>, _ scales: UnsafePointer<UInt8>, _ scale2: Float, _ cols: Int, _ r0: Int,
        _ r1: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ ntok: Int, _ y: UnsafeMutablePointer<Float>, _ ldy: Int
    ) {
        e4m3Values.withUnsafeBufferPointer { e4m3 in
            e2m1Values.withUnsafeBufferPointer { e2m1 in
                gemv(cols, r0, r1, x, ldx, ntok, y, ldy, block: 16) { r, k, scale in
                    e2m1[Int(nibble(w + r * (cols / 2), k))] * scale
                } scale: { r, b in
                    e4m3[Int(scales[r * (cols / 16) + b])] * scale2
                }
            }
        }
    }

    /// Code of element k of a packed 4-bit row: low nibble for even k, high for odd.
    @inline(__always)
    static func nibble(_ row: UnsafePointer<UInt8>, _ k: Int) -> UInt8 {
        let byte = row[k >> 1]
        return k & 1 == 0 ? byte & 0xF : byte >> 4
    }

    /// The shared loop: `weight(r, k, blockScale)` is the dequantized weight, `scale(r, b)` the
    /// scale of row r's block b (blocks of `block` inputs).
    @inline(__always)
    private static func gemv(
        _ cols: Int, _ r0: Int, _ r1: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ ntok: Int,
        _ y: UnsafeMutablePointer<Float>, _ ldy: Int, block: Int, weight: (Int, Int, Float) -> Float,
        scale: (Int, Int) -> Float
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(ntok, 1)) { sums in
            for r in r0..<r1 {
                for t in 0..<ntok { sums[t] = 0 }
                for b in 0..<(block == 0 ? 0 : cols / block) {
                    let s = scale(r, b)
                    for k in b * block..<(b + 1) * block {
                        let wk = weight(r, k, s)
                        for t in 0..<ntok { sums[t] += wk * x[t * ldx + k] }
                    }
                }
                for t in 0..<ntok { y[t * ldy + r] = sums[t] }
            }
        }
    }

    // MARK: - Row dequantization

    static func dequantRowsQ8(
        _ w: UnsafePointer<Int8>, _ scales: UnsafePointer<UInt16>, _ cols: Int, _ r0: Int, _ r1: Int,
        _ out: UnsafeMutablePointer<Float>
    ) {
        for r in r0..<r1 {
            let row = out + (r - r0) * cols
            for b in 0..<cols / 32 {
                let s = f16(scales[r * (cols / 32) + b])
                for k in b * 32..<(b + 1) * 32 { row[k] = Float(w[r * cols + k]) * s }
            }
        }
    }

    static func dequantRowsQ4(
        _ w: UnsafePointer<UInt8>, _ scales: UnsafePointer<UInt16>, _ cols: Int, _ r0: Int, _ r1: Int,
        _ out: UnsafeMutablePointer<Float>
    ) {
        for r in r0..<r1 {
            let row = out + (r - r0) * cols
            let packed = w + r * (cols / 2)
            for b in 0..<cols / 32 {
                let s = f16(scales[r * (cols / 32) + b])
                for k in b * 32..<(b + 1) * 32 { row[k] = Float(Int(nibble(packed, k)) - 8) * s }
            }
        }
    }

    static func dequantRowsFP8(
        _ w: UnsafePointer<UInt8>, _ scale: Float, _ cols: Int, _ r0: Int, _ r1: Int, _ out: UnsafeMutablePointer<Float>
    ) {
        e4m3Values.withUnsafeBufferPointer { table in
            for i in 0..<(r1 - r0) * cols { out[i] = table[Int(w[r0 * cols + i])] * scale }
        }
    }

    static func dequantRowsNVFP4(
        _ w: UnsafePointer<UInt8>, _ scales: UnsafePointer<UInt8>, _ scale2: Float, _ cols: Int, _ r0: Int,
        _ r1: Int, _ out: UnsafeMutablePointer<Float>
    ) {
        e4m3Values.withUnsafeBufferPointer { e4m3 in
            e2m1Values.withUnsafeBufferPointer { e2m1 in
                for r in r0..<r1 {
                    let row = out + (r - r0) * cols
                    let packed = w + r * (cols / 2)
                    for b in 0..<cols / 16 {
                        let s = e4m3[Int(scales[r * (cols / 16) + b])] * scale2
                        for k in b * 16..<(b + 1) * 16 { row[k] = e2m1[Int(nibble(packed, k))] * s }
                    }
                }
            }
        }
    }
}
