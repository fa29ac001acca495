import CKernels
import Foundation
import Testing

@testable import Nemotron

/// A quantized weight format as CKernels stores it (layouts in CKernels.h).
enum QuantFormat: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case q8, q4, fp8, nvfp4

    var testDescription: String { rawValue }
    /// Bytes of one row of `cols` weights.
    func rowBytes(_ cols: Int) -> Int { self == .q8 || self == .fp8 ? cols : cols / 2 }
    /// Inputs per block scale (0: one scale for the tensor).
    var block: Int { self == .fp8 ? 0 : self == .nvfp4 ? 16 : 32 }
}

/// A random quantized matrix and the naive Swift decoding of its weights, written from the
/// format definitions alone.
struct QuantMatrix {
    let format: QuantFormat
    let rows: Int
    let cols: Int
    var bytes: [UInt8]
    var halfScales: [UInt16] = []  // q8, q4: f16 per 32 inputs
    var e4m3Scales: [UInt8] = []  // nvfp4: E4M3 per 16 inputs
    var scale: Float = 1  // fp8: per tensor; nvfp4: scale2

    init(_ format: QuantFormat, rows: Int, cols: Int, seed: UInt64) {
        self.format = format
        self.rows = rows
        self.cols = cols
        var random = Xoshiro256(seed: seed)
        bytes = (0..<rows * format.rowBytes(cols)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        switch format {
        case .q8, .q4:
            halfScales = (0..<rows * cols / 32).map { _ in
                let magnitude = Float(0.001 + 0.1 * random.nextUnit())
                return Float16(random.next() % 5 == 0 ? -magnitude : magnitude).bitPattern
            }
        case .fp8:
            // No NaN codes here (S.1111.111); the edge-code tests place them on purpose.
            for i in bytes.indices where bytes[i] & 0x7F == 0x7F { bytes[i] ^= 1 }
            scale = 0.0123
        case .nvfp4:
            // Exponents 2...9 (scales 2^-5 ... 4) with any mantissa, some negative, some zero.
            e4m3Scales = (0..<rows * cols / 16).map { _ in
                let code = UInt8(0x10 + random.next() % 0x40)
                return random.next() % 7 == 0 ? 0 : random.next() % 5 == 0 ? code | 0x80 : code
            }
            scale = 0.0271
        }
    }

    /// Weight (r, k) dequantized in f32 exactly as the format defines it.
    func weight(_ r: Int, _ k: Int) -> Float {
        let row = r * format.rowBytes(cols)
        switch format {
        case .q8:
            return Float(Int8(bitPattern: bytes[row + k]))
                * Float(Float16(bitPattern: halfScales[r * cols / 32 + k / 32]))
        case .q4:
            let code = Int(bytes[row + k / 2] >> (4 * UInt8(k % 2)) & 0xF)
            return Float(code - 8) * Float(Float16(bitPattern: halfScales[r * cols / 32 + k / 32]))
        case .fp8:
            return QuantMatrix.e4m3(bytes[row + k]) * scale
        case .nvfp4:
            let code = bytes[row + k / 2] >> (4 * UInt8(k % 2)) & 0xF
            return QuantMatrix.e2m1(code) * (QuantMatrix.e4m3(e4m3Scales[r * cols / 16 + k / 16]) * scale)
        }
    }

    /// E4M3FN: sign, exponent (bias 7), 3 mantissa bits; S.1111.111 is NaN; no infinities.
    static func e4m3(_ byte: UInt8) -> Float {
        let sign: FloatingPointSign = byte & 0x80 != 0 ? .minus : .plus
        let exponent = Int(byte >> 3 & 0xF)
        let mantissa = Float(byte & 7)
        if exponent == 15 && mantissa == 7 { return .nan }
        if exponent == 0 { return Float(sign: sign, exponent: -9, significand: mantissa) }
        return Float(sign: sign, exponent: exponent - 7, significand: 1 + mantissa / 8)
    }

    /// E2M1: bit 3 the sign, magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}.
    static func e2m1(_ code: UInt8) -> Float {
        let magnitude: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
        return code & 8 != 0 ? -magnitude[Int(code & 7)] : magnitude[Int(code & 7)]
    }

    /// Runs `body` with raw pointers to the bytes and both scale arrays.
    func withPointers<R>(
        _ body: (UnsafePointer<UInt8>, UnsafePointer<UInt16>?, UnsafePointer<UInt8>?) -> R
    ) -> R {
        bytes.withUnsafeBufferPointer { w in
            halfScales.withUnsafeBufferPointer { h in
                e4m3Scales.withUnsafeBufferPointer { e in body(w.baseAddress!, h.baseAddress, e.baseAddress) }
            }
        }
    }

    /// ck_gemv_<format>: rows [r0, r1) against `tokens` rows of x; y is [tokens, rows].
    func gemv(_ x: [Float], tokens: Int, rows r0: Int, _ r1: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: tokens * rows)
        withPointers { w, h, e in
            y.withUnsafeMutableBufferPointer { y in
                let y = y.baseAddress!
                switch format {
                case .q8:
                    w.withMemoryRebound(to: Int8.self, capacity: bytes.count) { w in
                        ck_gemv_q8(w, h, cols, r0, r1, x, cols, tokens, y, rows)
                    }
                case .q4: ck_gemv_q4(w, h, cols, r0, r1, x, cols, tokens, y, rows)
                case .fp8: ck_gemv_fp8(w, scale, cols, r0, r1, x, cols, tokens, y, rows)
                case .nvfp4: ck_gemv_nvfp4(w, e, scale, cols, r0, r1, x, cols, tokens, y, rows)
                }
            }
        }
        return y
    }

    /// ck_gemv_<format>_q8 on packages of `stride` bytes per token.
    func gemvInt8(_ packages: UnsafeRawPointer, stride: Int, tokens: Int, rows r0: Int, _ r1: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: tokens * rows)
        withPointers { w, h, e in
            y.withUnsafeMutableBufferPointer { y in
                let y = y.baseAddress!
                switch format {
                case .q8:
                    w.withMemoryRebound(to: Int8.self, capacity: bytes.count) { w in
                        ck_gemv_q8_q8(w, h, cols, r0, r1, packages, stride, tokens, y, rows)
                    }
                case .q4: ck_gemv_q4_q8(w, h, cols, r0, r1, packages, stride, tokens, y, rows)
                case .nvfp4: ck_gemv_nvfp4_q8(w, e, scale, cols, r0, r1, packages, stride, tokens, y, rows)
                case .fp8: Issue.record("fp8 has no int8 path")
                }
            }
        }
        return y
    }

    /// ck_dequant_rows_<format> (f32) for rows [r0, r1).
    func dequantize(rows r0: Int, _ r1: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: (r1 - r0) * cols)
        withPointers { w, h, e in
            out.withUnsafeMutableBufferPointer { o in
                let o = o.baseAddress!
                switch format {
                case .q8:
                    w.withMemoryRebound(to: Int8.self, capacity: bytes.count) {
                        ck_dequant_rows_q8($0, h, cols, r0, r1, o)
                    }
                case .q4: ck_dequant_rows_q4(w, h, cols, r0, r1, o)
                case .fp8: ck_dequant_rows_fp8(w, scale, cols, r0, r1, o)
                case .nvfp4: ck_dequant_rows_nvfp4(w, e, scale, cols, r0, r1, o)
                }
            }
        }
        return out
    }

    /// ck_dequant_rows_<format>_bf16 for rows [r0, r1).
    func dequantizeBF16(rows r0: Int, _ r1: Int) -> [UInt16] {
        var out = [UInt16](repeating: 0xFFFF, count: (r1 - r0) * cols)
        withPointers { w, h, e in
            out.withUnsafeMutableBufferPointer { o in
                let o = o.baseAddress!
                switch format {
                case .q8:
                    w.withMemoryRebound(to: Int8.self, capacity: bytes.count) {
                        ck_dequant_rows_q8_bf16($0, h, cols, r0, r1, o)
                    }
                case .q4: ck_dequant_rows_q4_bf16(w, h, cols, r0, r1, o)
                case .fp8: ck_dequant_rows_fp8_bf16(w, scale, cols, r0, r1, o)
                case .nvfp4: ck_dequant_rows_nvfp4_bf16(w, e, scale, cols, r0, r1, o)
                }
            }
        }
        return out
    }
}

/// Activations quantized per block of 32 (ck_q8_quantize_activation), one package per token.
final class ActivationPackages {
    let cols: Int
    let tokens: Int
    let stride: Int
    let base: UnsafeMutableRawPointer

    init(_ x: [Float], cols: Int, tokens: Int) {
        self.cols = cols
        self.tokens = tokens
        stride = ck_q8_activation_bytes(cols)
        base = UnsafeMutableRawPointer.allocate(byteCount: stride * tokens, alignment: 64)
        for t in 0..<tokens {
            x.withUnsafeBufferPointer { ck_q8_quantize_activation($0.baseAddress! + t * cols, cols, base + t * stride) }
        }
    }

    deinit { base.deallocate() }

    func q(_ t: Int) -> [Int8] {
        Array(UnsafeBufferPointer(start: (base + t * stride).assumingMemoryBound(to: Int8.self), count: cols))
    }

    func d(_ t: Int) -> [Float] {
        let start = base + t * stride + ck_q8_activation_scales_offset(cols)
        return Array(UnsafeBufferPointer(start: start.assumingMemoryBound(to: Float.self), count: cols / 32))
    }
}

@Suite("Quantized-weight kernels against naive twins, every instruction set")
struct QuantKernelTests {
    /// The levels this CPU runs, from scalar up (ck_quant_set_isa_cap caps the calling thread).
    static let levels: [Int32] = [CK_QUANT_SCALAR, CK_QUANT_AVX2, CK_QUANT_AVX512, CK_QUANT_AVX512_VNNI]
        .filter { $0 <= ck_quant_isa_level() }

    /// Column counts: within one group of scales, whole groups with and without a tail, more than
    /// one 1024-column span (the int8 path's tiling above two tokens), and for fp8 widths that are
    /// not multiples of anything.
    static func widths(_ format: QuantFormat, int8: Bool = false) -> [Int] {
        switch format {
        case .q8, .q4: return [32, 96, 160, 512, 544, 1056]
        case .fp8: return [7, 33, 100, 512, 545]
        case .nvfp4: return int8 ? [32, 96, 288, 544, 1056] : [16, 48, 80, 272, 512, 1040]
        }
    }

    static let rows = 37
    static let firstRow = 3

    /// Activations in [-1, 1], with one all-zero block and one block with an outlier.
    static func activations(cols: Int, tokens: Int, seed: UInt64) -> [Float] {
        var random = Xoshiro256(seed: seed)
        var x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        for t in 0..<tokens {
            if cols >= 64 { for k in 32..<64 { x[t * cols + k] = 0 } }
            x[t * cols + cols - 1] = 40
        }
        return x
    }

    /// Runs `body` capped at `level` on this thread.
    func at<R>(_ level: Int32, _ body: () throws -> R) rethrows -> R {
        #expect(ck_quant_set_isa_cap(level) == level)
        defer { ck_quant_set_isa_cap(0) }
        return try body()
    }

    /// Largest |y - reference| / (sum of |terms| + tiny) over rows [firstRow, rows) and tokens.
    func relativeError(_ y: [Float], _ reference: [(value: Double, magnitude: Double)], tokens: Int) -> Double {
        var worst = 0.0
        for t in 0..<tokens {
            for r in Self.firstRow..<Self.rows {
                let (value, magnitude) = reference[t * Self.rows + r]
                let error = abs(Double(y[t * Self.rows + r]) - value) / (magnitude + 1e-30)
                if !(error <= worst) { worst = error }  // NaN counts as the worst
            }
        }
        return worst
    }

    @Test("ISA cap: each level runs what it names", arguments: levels)
    func isaCap(level: Int32) {
        at(level) {
            let names: [Int32: String] = [1: "scalar", 2: "avx2", 3: "avx512", 4: "avx512vnni"]
            #expect(String(cString: ck_quant_isa()) == names[level])
            #expect(ck_quant_isa_level() == level)
        }
        #expect(ck_quant_isa_level() >= level)
    }

    @Test("dequantized rows equal the format definition bit for bit", arguments: QuantFormat.allCases, levels)
    func dequantize(format: QuantFormat, level: Int32) {
        for cols in Self.widths(format) {
            let m = QuantMatrix(format, rows: Self.rows, cols: cols, seed: UInt64(cols))
            let out = at(level) { m.dequantize(rows: Self.firstRow, Self.rows) }
            let mismatches = (Self.firstRow..<Self.rows).flatMap { r in
                (0..<cols).filter { k in out[(r - Self.firstRow) * cols + k].bitPattern != m.weight(r, k).bitPattern }
            }
            #expect(mismatches.isEmpty, "\(format) cols \(cols): \(mismatches.count) weights differ")
        }
    }

    @Test("bf16 rows are the dequantized weights rounded to nearest even", arguments: QuantFormat.allCases, levels)
    func dequantizeBF16(format: QuantFormat, level: Int32) {
        for cols in Self.widths(format) {
            let m = QuantMatrix(format, rows: Self.rows, cols: cols, seed: UInt64(cols) + 7)
            let out = at(level) { m.dequantizeBF16(rows: Self.firstRow, Self.rows) }
            var mismatches = 0
            for r in Self.firstRow..<Self.rows {
                for k in 0..<cols {
                    let bits = m.weight(r, k).bitPattern
                    let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
                    if out[(r - Self.firstRow) * cols + k] != rounded { mismatches += 1 }
                }
            }
            #expect(mismatches == 0, "\(format) cols \(cols)")
        }
    }

    @Test(
        "exact path: f32 products of dequantized weights, within 1e-5 of a double twin",
        arguments: QuantFormat.allCases, levels)
    func exactGEMV(format: QuantFormat, level: Int32) {
        for cols in Self.widths(format) {
            for tokens in [1, 2, 3, 4, 5, 8] {
                let m = QuantMatrix(format, rows: Self.rows, cols: cols, seed: UInt64(cols * 10 + tokens))
                let x = Self.activations(cols: cols, tokens: tokens, seed: UInt64(tokens))
                let y = at(level) { m.gemv(x, tokens: tokens, rows: Self.firstRow, Self.rows) }
                let reference = (0..<tokens).flatMap { t in
                    (0..<Self.rows).map { r in
                        (0..<cols).reduce(into: (value: 0.0, magnitude: 0.0)) { sum, k in
                            let term = Double(m.weight(r, k)) * Double(x[t * cols + k])
                            sum.value += term
                            sum.magnitude += abs(term)
                        }
                    }
                }
                let error = relativeError(y, reference, tokens: tokens)
                #expect(error <= 1e-5, "\(format) cols \(cols) tokens \(tokens): \(error)")
                #expect(y[0..<Self.firstRow].allSatisfy { $0.isNaN }, "rows before r0 untouched")
            }
        }
    }

    @Test("activation quantization: q and d as the twin computes them", arguments: levels)
    func quantizeActivation(level: Int32) {
        for cols in [32, 96, 160, 544, 1056] {
            let x = Self.activations(cols: cols, tokens: 2, seed: UInt64(cols))
            let packages = at(level) { ActivationPackages(x, cols: cols, tokens: 2) }
            for t in 0..<2 {
                var q = [Int8]()
                var d = [Float]()
                for b in 0..<cols / 32 {
                    let block = x[(t * cols + 32 * b)..<(t * cols + 32 * b + 32)]
                    let scale = block.reduce(Float(0)) { max($0, abs($1)) } / 127
                    let inverse: Float = scale > 0 ? 1 / scale : 0
                    d.append(scale)
                    q += block.map { Int8(($0 * inverse).rounded(.toNearestOrEven)) }
                }
                #expect(packages.q(t) == q, "cols \(cols) token \(t)")
                #expect(packages.d(t) == d, "cols \(cols) token \(t)")
            }
        }
    }

    @Test(
        "int8 path: block dots within 1e-5 of a double twin, and within the rounding bound of the exact product",
        arguments: [QuantFormat.q8, .q4, .nvfp4], levels)
    func int8GEMV(format: QuantFormat, level: Int32) {
        for cols in Self.widths(format, int8: true) {
            for tokens in [1, 2, 3, 4, 5, 8] {
                let m = QuantMatrix(format, rows: Self.rows, cols: cols, seed: UInt64(cols * 10 + tokens))
                let x = Self.activations(cols: cols, tokens: tokens, seed: UInt64(tokens))
                let packages = at(level) { ActivationPackages(x, cols: cols, tokens: tokens) }
                let y = at(level) {
                    m.gemvInt8(
                        UnsafeRawPointer(packages.base), stride: packages.stride, tokens: tokens,
                        rows: Self.firstRow, Self.rows)
                }
                // The twin: per block of the weight format, sum of integer products times both scales.
                var reference: [(value: Double, magnitude: Double)] = []
                var exact: [(value: Double, magnitude: Double)] = []
                for t in 0..<tokens {
                    let q = packages.q(t)
                    let d = packages.d(t)
                    for r in 0..<Self.rows {
                        var sum = (value: 0.0, magnitude: 0.0)
                        var product = (value: 0.0, magnitude: 0.0)
                        for b in 0..<cols / format.block {
                            var dot = 0
                            var dotMagnitude = 0
                            for k in b * format.block..<(b + 1) * format.block {
                                let row = r * format.rowBytes(cols)
                                let weight: Int
                                switch format {
                                case .q8: weight = Int(Int8(bitPattern: m.bytes[row + k]))
                                case .q4: weight = Int(m.bytes[row + k / 2] >> (4 * UInt8(k % 2)) & 0xF) - 8
                                default:
                                    weight = Int(2 * QuantMatrix.e2m1(m.bytes[row + k / 2] >> (4 * UInt8(k % 2)) & 0xF))
                                }
                                dot += weight * Int(q[k])
                                dotMagnitude += abs(weight * Int(q[k]))
                                // Rounding x to q moves each product by at most half a step of its block.
                                product.value += Double(m.weight(r, k)) * Double(x[t * cols + k])
                                product.magnitude += abs(Double(m.weight(r, k))) * Double(d[k / 32]) / 2
                            }
                            let weightScale =
                                format == .nvfp4
                                ? Double(QuantMatrix.e4m3(m.e4m3Scales[r * cols / 16 + b])) * Double(m.scale) / 2
                                : Double(Float(Float16(bitPattern: m.halfScales[r * cols / 32 + b])))
                            let scale = weightScale * Double(d[b * format.block / 32])
                            sum.value += scale * Double(dot)
                            sum.magnitude += abs(scale) * Double(dotMagnitude)
                        }
                        reference.append(sum)
                        exact.append(product)
                    }
                }
                let error = relativeError(y, reference, tokens: tokens)
                #expect(error <= 1e-5, "\(format) cols \(cols) tokens \(tokens): \(error)")
                let bound = relativeError(y, exact, tokens: tokens)
                #expect(bound <= 1.01, "\(format) cols \(cols) tokens \(tokens): \(bound) of the rounding bound")
            }
        }
    }

    /// The int8 prefill GEMM (ck_gemm_q8_q8, ck_gemm_q4_q8) against its Swift twin: activations
    /// quantized per block of 32 as ck_q8_quantize_activation does, the exact integer dot of each
    /// block, then weight scale × activation scale in f32, blocks summed in order. Rows [3, rows)
    /// cover whole 32-row panels and a partial one; token counts are odd (partial token tiles).
    @Test(
        "int8 prefill GEMM: exact block dots times both scales, as the Swift twin computes them",
        .enabled(if: ck_q8_gemm_available() != 0), arguments: [QuantFormat.q8, .q4])
    func int8GEMM(format: QuantFormat) {
        let shapes: [(rows: Int, cols: Int, tokens: Int)] = [
            (37, 32, 9), (45, 96, 13), (70, 160, 47), (45, 544, 121), (37, 1056, 31), (70, 288, 599),
        ]
        for (rows, cols, tokens) in shapes {
            let m = QuantMatrix(format, rows: rows, cols: cols, seed: UInt64(cols * 7 + tokens))
            let x = Self.activations(cols: cols, tokens: tokens, seed: UInt64(tokens))
            let (r0, tiles) = (Self.firstRow, (tokens + ck_q8_gemm_tile_tokens() - 1) / ck_q8_gemm_tile_tokens())
            let input = UnsafeMutableRawPointer.allocate(
                byteCount: ck_q8_gemm_act_bytes(tokens, cols), alignment: 64)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: ck_q8_gemm_scratch(cols), alignment: 64)
            defer {
                input.deallocate()
                scratch.deallocate()
            }
            // Quantized in two calls, as threads share the tiles.
            ck_q8_gemm_quantize(x, cols, tokens, cols, format == .q4 ? 4 : 8, 0, tiles / 2, input)
            ck_q8_gemm_quantize(x, cols, tokens, cols, format == .q4 ? 4 : 8, tiles / 2, tiles, input)
            var y = [Float](repeating: .nan, count: tokens * rows)
            m.withPointers { w, h, _ in
                y.withUnsafeMutableBufferPointer { y in
                    if format == .q8 {
                        w.withMemoryRebound(to: Int8.self, capacity: m.bytes.count) { w in
                            ck_gemm_q8_q8(w, h, cols, r0, rows, input, tokens, y.baseAddress!, rows, scratch)
                        }
                    } else {
                        ck_gemm_q4_q8(w, h, cols, r0, rows, input, tokens, y.baseAddress!, rows, scratch)
                    }
                }
            }
            var worst = 0.0
            for t in 0..<tokens {
                // The twin's activations: d = amax / 127, q = nearest-even(x · (1/d)) per block.
                var q = [Int](repeating: 0, count: cols)
                var d = [Float](repeating: 0, count: cols / 32)
                for b in 0..<cols / 32 {
                    let block = x[(t * cols + 32 * b)..<(t * cols + 32 * b + 32)]
                    d[b] = block.reduce(Float(0)) { max($0, abs($1)) } / 127
                    let inverse: Float = d[b] > 0 ? 1 / d[b] : 0
                    for (e, v) in block.enumerated() { q[32 * b + e] = Int((v * inverse).rounded(.toNearestOrEven)) }
                }
                for r in 0..<rows {
                    let got = y[t * rows + r]
                    guard r >= r0 else {
                        #expect(got.isNaN, "row \(r) before r0 untouched")
                        continue
                    }
                    var (value, magnitude): (Float, Double) = (0, 0)
                    for b in 0..<cols / 32 {
                        var dot = 0
                        for k in 32 * b..<32 * b + 32 {
                            let weight =
                                format == .q8
                                ? Int(Int8(bitPattern: m.bytes[r * cols + k]))
                                : Int(m.bytes[r * cols / 2 + k / 2] >> (4 * UInt8(k % 2)) & 0xF) - 8
                            dot += weight * q[k]
                        }
                        let weightScale = Float(Float16(bitPattern: m.halfScales[r * cols / 32 + b]))
                        value = value.addingProduct(Float(dot) * d[b], weightScale)
                        magnitude += abs(Double(dot) * Double(d[b]) * Double(weightScale))
                    }
                    let error = abs(Double(got) - Double(value)) / (magnitude + 1e-30)
                    if !(error <= worst) { worst = error }
                }
            }
            #expect(worst <= 1e-5, "\(format) rows \(rows) cols \(cols) tokens \(tokens): \(worst)")
        }
    }

    @Test("E4M3 edge codes: zeros, subnormals, ±448, NaN", arguments: levels)
    func e4m3Codes(level: Int32) {
        var m = QuantMatrix(.fp8, rows: 1, cols: 256, seed: 1)
        m.bytes = (0...255).map { UInt8($0) }
        m.scale = 1
        let w = at(level) { m.dequantize(rows: 0, 1) }
        #expect(w[0x00].bitPattern == Float(0).bitPattern)
        #expect(w[0x80].bitPattern == Float(-0.0).bitPattern)
        #expect(w[0x01] == 0x1p-9 && w[0x07] == 7 * 0x1p-9 && w[0x81] == -0x1p-9)
        #expect(w[0x08] == 0x1p-6 && w[0x38] == 1 && w[0x7E] == 448 && w[0xFE] == -448)
        #expect(w[0x7F].isNaN && w[0xFF].isNaN)
        let mismatches = (0..<256).filter { k in
            let expected = QuantMatrix.e4m3(UInt8(k))
            return expected.isNaN ? !w[k].isNaN : w[k].bitPattern != expected.bitPattern
        }
        #expect(mismatches.isEmpty, "codes \(mismatches)")
    }

    @Test("a NaN weight code poisons its own row only", arguments: levels)
    func nanRows(level: Int32) {
        var fp8 = QuantMatrix(.fp8, rows: Self.rows, cols: 100, seed: 3)
        fp8.bytes[5 * 100 + 77] = 0xFF
        var nvfp4 = QuantMatrix(.nvfp4, rows: Self.rows, cols: 64, seed: 3)
        nvfp4.e4m3Scales[9 * 4 + 2] = 0x7F
        let x = Self.activations(cols: 100, tokens: 2, seed: 4)
        at(level) {
            let y = fp8.gemv(x, tokens: 2, rows: 0, Self.rows)
            #expect(y[5].isNaN && y[Self.rows + 5].isNaN)
            #expect(y.indices.filter { $0 % Self.rows != 5 }.allSatisfy { y[$0].isFinite })
            let x4 = Array(x[0..<64]) + Array(x[100..<164])
            let y4 = nvfp4.gemv(x4, tokens: 2, rows: 0, Self.rows)
            #expect(y4[9].isNaN && y4.indices.filter { $0 % Self.rows != 9 }.allSatisfy { y4[$0].isFinite })
            let packages = ActivationPackages(x4, cols: 64, tokens: 2)
            let yq = nvfp4.gemvInt8(
                UnsafeRawPointer(packages.base), stride: packages.stride, tokens: 2, rows: 0, Self.rows)
            #expect(yq[9].isNaN && yq.indices.filter { $0 % Self.rows != 9 }.allSatisfy { yq[$0].isFinite })
        }
    }

    @Test("E2M1 codes under edge E4M3 block scales (zero, -0, subnormal, 448, NaN)", arguments: levels)
    func e2m1Codes(level: Int32) {
        let scaleCodes: [UInt8] = [0x00, 0x80, 0x01, 0x38, 0x7E, 0xB8, 0x7F]
        var m = QuantMatrix(.nvfp4, rows: scaleCodes.count, cols: 32, seed: 1)
        // Row r: the 16 codes in order twice (columns 0-15 and 16-31), both blocks scaled by scaleCodes[r].
        let codes: [UInt8] = (0..<16).map { j in
            let low = UInt8((2 * j) % 16)
            let high = UInt8((2 * j + 1) % 16)
            return low | high << 4
        }
        m.bytes = Array([[UInt8]](repeating: codes, count: scaleCodes.count).joined())
        m.e4m3Scales = scaleCodes.flatMap { [$0, $0] }
        m.scale = 0.5
        let w = at(level) { m.dequantize(rows: 0, scaleCodes.count) }
        for (r, code) in scaleCodes.enumerated() {
            let blockScale = QuantMatrix.e4m3(code) * 0.5
            for k in 0..<32 {
                let expected = QuantMatrix.e2m1(UInt8(k % 16)) * blockScale
                let got = w[r * 32 + k]
                #expect(expected.isNaN ? got.isNaN : got.bitPattern == expected.bitPattern, "scale \(code) column \(k)")
            }
        }
    }

    @Test("nibble order: column 2j in the low nibble of byte j (int4 and nvfp4)", arguments: levels)
    func nibbleOrder(level: Int32) {
        var q4 = QuantMatrix(.q4, rows: 1, cols: 32, seed: 1)
        q4.bytes = [0x9F] + [UInt8](repeating: 0x88, count: 15)
        q4.halfScales = [Float16(1).bitPattern]
        var nvfp4 = QuantMatrix(.nvfp4, rows: 1, cols: 32, seed: 1)
        nvfp4.bytes = [0x21] + [UInt8](repeating: 0, count: 15)
        nvfp4.e4m3Scales = [0x38, 0x38]
        nvfp4.scale = 1
        at(level) {
            #expect(Array(q4.dequantize(rows: 0, 1)[0..<3]) == [7, 1, 0])
            #expect(Array(nvfp4.dequantize(rows: 0, 1)[0..<3]) == [0.5, 1, 0])
        }
    }
}
