import CKernels
import Foundation
import Testing

@testable import Nemotron

/// A random `[rows, cols]` f32 matrix (values in ±1, a few rows scaled up or down so blocks
/// differ in range) that owns its storage.
struct RandomWeights {
    let values: [Float]
    let rows: Int
    let cols: Int

    init(rows: Int, cols: Int, seed: UInt64) {
        var random = Xoshiro256(seed: seed)
        self.rows = rows
        self.cols = cols
        values = (0..<rows * cols).map { i in
            let scale: Float = i / cols % 5 == 0 ? 8 : (i / cols % 7 == 0 ? 0.01 : 1)
            return (Float(random.nextUnit()) * 2 - 1) * scale
        }
    }

    /// The values quantized into `format` (the matrix owns its bytes).
    func quantized(_ format: WeightFormat) -> WeightMatrix {
        values.withUnsafeBytes { raw in
            WeightQuantizer.quantize(
                WeightMatrix(rows: rows, cols: cols, format: .f32, base: raw.baseAddress!), to: format)
        }
    }
}

extension WeightMatrix {
    /// Every row dequantized.
    var dequantized: [Float] {
        var out = [Float](repeating: .nan, count: rows * cols)
        out.withUnsafeMutableBufferPointer { rows(from: 0, count: self.rows, into: $0.baseAddress!) }
        return out
    }
}

@Suite("Quantized formats: kernels, quantizer, slicing")
struct QuantizedMatMulTests {
    static let formats: [WeightFormat] = [.int8, .int4, .fp8, .nvfp4]

    /// y[t, r] = Σ_k x[t, k] · W[r, k] in double precision.
    func naive(_ x: [Float], _ w: [Float], tokens: Int, rows: Int, cols: Int) -> [Float] {
        (0..<tokens).flatMap { t in
            (0..<rows).map { r in
                Float((0..<cols).reduce(0.0) { $0 + Double(x[t * cols + $1]) * Double(w[r * cols + $1]) })
            }
        }
    }

    @Test(
        "linear equals dequantized weights times f32 activations, streaming and tiled paths",
        arguments: formats, [1, 3, 8, 9, 40])
    func linear(format: WeightFormat, tokens: Int) {
        let (rows, cols) = (70, 96)
        let weights = RandomWeights(rows: rows, cols: cols, seed: 3).quantized(format)
        var random = Xoshiro256(seed: UInt64(tokens))
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        var y = [Float](repeating: .nan, count: tokens * rows)
        MatMul.linear(x, tokens: tokens, weights, into: &y, KernelContext(workspace: Workspace(threads: 2)))
        let expected = naive(x, weights.dequantized, tokens: tokens, rows: rows, cols: cols)
        #expect(maxAbsDifference(y, expected) <= 1e-4)
    }

    @Test("bf16 compute multiplies bf16-rounded dequantized weights and activations", arguments: formats)
    func bf16Compute(format: WeightFormat) {
        let (rows, cols, tokens) = (40, 64, 12)
        let weights = RandomWeights(rows: rows, cols: cols, seed: 4).quantized(format)
        var random = Xoshiro256(seed: 8)
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        var y = [Float](repeating: .nan, count: tokens * rows)
        MatMul.linear(
            x, tokens: tokens, weights, into: &y,
            KernelContext(workspace: Workspace(threads: 2), policy: ComputePolicy(prefill: .bf16)))
        func bf16(_ v: Float) -> Float {
            MatMul.hasBF16Dot
                ? Float(bitPattern: (v.bitPattern &+ 0x7FFF &+ ((v.bitPattern >> 16) & 1)) & 0xFFFF_0000) : v
        }
        let expected = naive(x.map(bf16), weights.dequantized.map(bf16), tokens: tokens, rows: rows, cols: cols)
        #expect(maxAbsDifference(y, expected) <= 1e-3)
    }

    /// The bf16 GEMM gets tiles of whole 32-row panels; the last one may hold fewer panels than
    /// there are threads (here 2 rows), which a thread must skip.
    @Test("bf16 compute through a last tile smaller than a panel per thread")
    func bf16LastTile() {
        let cols = 6144
        let rows = 2 * HalfKernels.tileFloats / cols / 32 * 32 + 2
        let weights = RandomWeights(rows: rows, cols: cols, seed: 9).quantized(.int8)
        let tokens = 9
        let x = (0..<tokens * cols).map { Float($0 % 7) - 3 }
        var y = [Float](repeating: .nan, count: tokens * rows)
        MatMul.linear(
            x, tokens: tokens, weights, into: &y,
            KernelContext(workspace: Workspace(threads: 2), policy: ComputePolicy(prefill: .bf16)))
        #expect(!y.contains { $0.isNaN })
        let w = weights.dequantized
        let last = rows - 1
        let expected = (0..<cols).reduce(Float(0)) { $0 + w[last * cols + $1] * x[(tokens - 1) * cols + $1] }
        #expect(abs(y[(tokens - 1) * rows + last] - expected) <= 0.05 * max(1, abs(expected)))
    }

    @Test("the reference GEMV matches its row dequantizer on a row range and strided tokens", arguments: formats)
    func gemvRows(format: WeightFormat) {
        let (rows, cols, tokens) = (20, 64, 3)
        let weights = RandomWeights(rows: rows, cols: cols, seed: 5).quantized(format)
        let ldx = cols + 5
        let ldy = rows + 2
        var random = Xoshiro256(seed: 1)
        let x = (0..<tokens * ldx).map { _ in Float(random.nextUnit()) - 0.5 }
        var y = [Float](repeating: -7, count: tokens * ldy)
        QuantKernels.gemv(weights, rows: 4..<17, x, ldx: ldx, tokens: tokens, &y, ldy: ldy)
        let w = weights.dequantized
        for t in 0..<tokens {
            for r in 0..<ldy {
                let expected =
                    (4..<17).contains(r)
                    ? (0..<cols).reduce(Float(0)) { $0 + w[r * cols + $1] * x[t * ldx + $1] } : -7
                #expect(abs(y[t * ldy + r] - expected) <= 1e-5)
            }
        }
    }

    /// Under compute int8, decode GEMVs against int8, int4 and nvfp4 weights take activations
    /// quantized per 32 inputs (d = max|x| / 127, q = rint(x · (1/d))): the products equal the
    /// dequantized weights times the dequantized activations.
    @Test(
        "int8 activations: dequantized weights times Q8_0-style quantized activations",
        arguments: [
            WeightFormat.int8, .int4, .nvfp4, .fp8,
        ])
    func int8Activations(format: WeightFormat) {
        let (rows, cols, tokens) = (70, 128, 3)
        let weights = RandomWeights(rows: rows, cols: cols, seed: 13).quantized(format)
        var random = Xoshiro256(seed: 3)
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        var y = [Float](repeating: .nan, count: tokens * rows)
        MatMul.linear(
            x, tokens: tokens, weights, into: &y,
            KernelContext(workspace: Workspace(threads: 2), policy: ComputePolicy(prefill: .int8)))
        let quantized =
            format == .fp8
            ? x
            : (0..<tokens * cols / 32).flatMap { b -> [Float] in
                let block = x[b * 32..<(b + 1) * 32]
                let d = block.map(abs).max()! / 127
                return block.map { ($0 * (1 / d)).rounded(.toNearestOrEven) * d }
            }
        let expected = naive(quantized, weights.dequantized, tokens: tokens, rows: rows, cols: cols)
        #expect(maxAbsDifference(y, expected) <= 1e-4, "fp8 has no int8 kernel and stays exact")
    }

    /// Under compute int8, prefill against int8 and int4 weights (more tokens than the streaming
    /// kernels take) quantizes the activations the same way and runs the int8 GEMM where the CPU
    /// has AVX512-VNNI; both threads claim 32-row panels, the last one partial.
    @Test(
        "int8 activations in prefill: dequantized weights times Q8_0-style quantized activations",
        arguments: [WeightFormat.int8, .int4], [9, 40, 77])
    func int8Prefill(format: WeightFormat, tokens: Int) {
        let (rows, cols) = (150, 160)
        let weights = RandomWeights(rows: rows, cols: cols, seed: 17).quantized(format)
        var random = Xoshiro256(seed: UInt64(tokens))
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        var y = [Float](repeating: .nan, count: tokens * rows)
        MatMul.linear(
            x, tokens: tokens, weights, into: &y,
            KernelContext(workspace: Workspace(threads: 2), policy: ComputePolicy(prefill: .int8)))
        let quantized: [Float]
        if QuantKernels.hasInt8GEMM(weights) {
            quantized = (0..<tokens * cols / 32).flatMap { b -> [Float] in
                let block = x[b * 32..<(b + 1) * 32]
                let d = block.map(abs).max()! / 127
                return block.map { ($0 * (1 / d)).rounded(.toNearestOrEven) * d }
            }
        } else {
            quantized = x  // no AVX512-VNNI: the bf16 GEMM or f32 tiles, checked loosely here
        }
        let expected = naive(quantized, weights.dequantized, tokens: tokens, rows: rows, cols: cols)
        #expect(maxAbsDifference(y, expected) <= (QuantKernels.hasInt8GEMM(weights) ? 1e-4 : 5e-2))
    }

    /// CKernels' exact GEMVs and dequantizers against their naive twins in QuantReference, at
    /// every instruction-set level this CPU has (scalar, AVX2, AVX-512).
    @Test("CKernels' exact path equals the reference kernels at every ISA level", arguments: formats)
    func simdMatchesReference(format: WeightFormat) throws {
        let (rows, cols, tokens) = (37, 160, 5)
        let w = RandomWeights(rows: rows, cols: cols, seed: 21).quantized(format)
        var random = Xoshiro256(seed: 2)
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let levels = (CK_QUANT_SCALAR...min(ck_quant_isa_level(), CK_QUANT_AVX512)).map { $0 }
        defer { ck_quant_set_isa_cap(0) }
        for level in levels {
            #expect(ck_quant_set_isa_cap(Int32(level)) == level)
            var simd = [Float](repeating: .nan, count: rows * cols)
            var naive = simd
            QuantKernels.dequantizeRows(w, 0..<rows, into: &simd)
            reference(w, rows: 0..<rows, x: nil, tokens: 0, into: &naive)
            #expect(simd.map(\.bitPattern) == naive.map(\.bitPattern), "\(format) dequantized at level \(level)")
            var y = [Float](repeating: .nan, count: tokens * rows)
            var expected = y
            QuantKernels.gemv(w, rows: 3..<rows, x, ldx: cols, tokens: tokens, &y, ldy: rows)
            reference(w, rows: 3..<rows, x: x, tokens: tokens, into: &expected)
            let (a, b) = (y.enumerated().filter { $0.offset % rows >= 3 }, expected.enumerated())
            #expect(
                zip(a, b.filter { $0.offset % rows >= 3 }).allSatisfy { abs($0.element - $1.element) <= 1e-4 },
                "\(format) GEMV at level \(level)")
        }
    }

    /// QuantReference's GEMV (`x` given) or row dequantizer (`x` nil) for `w`.
    func reference(
        _ w: WeightMatrix, rows: Range<Int>, x: [Float]?, tokens: Int, into out: UnsafeMutablePointer<Float>
    ) {
        let (r0, r1, cols) = (rows.lowerBound, rows.upperBound, w.cols)
        let data = w.base
        let scales = w.scales.blockBase
        let tensorScale = w.scales.tensorScale
        guard let x else {
            switch w.format {
            case .int8:
                QuantReference.dequantRowsQ8(
                    data.assumingMemoryBound(to: Int8.self), scales!.assumingMemoryBound(to: UInt16.self), cols, r0,
                    r1, out)
            case .int4:
                QuantReference.dequantRowsQ4(
                    data.assumingMemoryBound(to: UInt8.self), scales!.assumingMemoryBound(to: UInt16.self), cols, r0,
                    r1, out)
            case .fp8:
                QuantReference.dequantRowsFP8(data.assumingMemoryBound(to: UInt8.self), tensorScale, cols, r0, r1, out)
            default:
                QuantReference.dequantRowsNVFP4(
                    data.assumingMemoryBound(to: UInt8.self), scales!.assumingMemoryBound(to: UInt8.self), tensorScale,
                    cols, r0, r1, out)
            }
            return
        }
        let rowsTotal = w.rows
        switch w.format {
        case .int8:
            QuantReference.gemvQ8(
                data.assumingMemoryBound(to: Int8.self), scales!.assumingMemoryBound(to: UInt16.self), cols, r0, r1, x,
                cols, tokens, out, rowsTotal)
        case .int4:
            QuantReference.gemvQ4(
                data.assumingMemoryBound(to: UInt8.self), scales!.assumingMemoryBound(to: UInt16.self), cols, r0, r1,
                x, cols, tokens, out, rowsTotal)
        case .fp8:
            QuantReference.gemvFP8(
                data.assumingMemoryBound(to: UInt8.self), tensorScale, cols, r0, r1, x, cols, tokens, out, rowsTotal)
        default:
            QuantReference.gemvNVFP4(
                data.assumingMemoryBound(to: UInt8.self), scales!.assumingMemoryBound(to: UInt8.self), tensorScale,
                cols, r0, r1, x, cols, tokens, out, rowsTotal)
        }
    }

    @Test("every E4M3FN code decodes and encodes back; halfway values round to the even code")
    func e4m3() {
        for code in 0..<256 where code & 0x7F != 0x7F {
            let value = QuantReference.e4m3Values[code]
            #expect(WeightQuantizer.e4m3(value) == UInt8(code) || (value == 0 && code == 0x80))
        }
        #expect(QuantReference.e4m3Values[0x7E] == 448 && QuantReference.e4m3Values[0x01] == 0x1p-9)
        #expect(QuantReference.e4m3Values[0x7F].isNaN && QuantReference.e4m3Values[0xFF].isNaN)
        #expect(WeightQuantizer.e4m3(1.0625) == 0x38)  // halfway between 1 (even) and 1.125
        #expect(WeightQuantizer.e4m3(1.1875) == 0x3A)  // halfway between 1.125 and 1.25 (even)
        #expect(WeightQuantizer.e4m3(3 * 0x1p-10) == 0x02)  // subnormal halfway 1.5 · 2⁻⁹ → 2 · 2⁻⁹
        #expect(WeightQuantizer.e4m3(464) == 0x7E && WeightQuantizer.e4m3(470) == 0x7F)
        #expect(WeightQuantizer.e4m3(-0.5) == 0xB0)
    }

    @Test("E2M1 codes round as ModelOpt's cast: nearest, ties to the even code, sign in bit 3")
    func e2m1() {
        let cases: [(Float, UInt8)] = [
            (0, 0), (0.25, 0), (0.26, 1), (0.75, 2), (1.25, 2), (1.75, 4), (2.5, 4), (3.5, 6), (5, 6), (5.01, 7),
            (100, 7), (-0.5, 9), (-6, 15), (-0.1, 8),
        ]
        for (value, code) in cases { #expect(WeightQuantizer.e2m1(value) == code, "\(value)") }
        for code in 0..<16 {
            #expect(WeightQuantizer.e2m1(QuantReference.e2m1Values[code]) == UInt8(code) || code == 8)
        }
    }

    @Test("int8 stays within half a step, int4 within a step; the int4 search beats Q4_0's weighted error")
    func errors() {
        let (rows, cols) = (16, 256)
        let source = RandomWeights(rows: rows, cols: cols, seed: 11)
        for format in [WeightFormat.int8, .int4] {
            let q = source.quantized(format).dequantized
            for b in 0..<rows * cols / 32 {
                let block = source.values[b * 32..<(b + 1) * 32]
                let amax = block.map(abs).max()!
                // int8: half a step of amax / 127; int4: the search may clip the peak a little.
                let bound = format == .int8 ? amax / 127 * 0.51 : amax / 7
                let worst = (b * 32..<(b + 1) * 32).map { abs(q[$0] - source.values[$0]) }.max()!
                #expect(worst <= bound + 1e-6, "\(format) block \(b)")
            }
        }
        func squaredError(_ choice: WeightQuantizer.Int4Scale) -> Double {
            let q = source.values.withUnsafeBytes {
                WeightQuantizer.quantize(
                    WeightMatrix(rows: rows, cols: cols, format: .f32, base: $0.baseAddress!), to: .int4,
                    int4Scale: choice
                ).dequantized
            }
            // Each weight's error counts with its importance w², as the search weighs it.
            return zip(q, source.values).reduce(0) { $0 + Double($1.1 * $1.1 * ($1.0 - $1.1) * ($1.0 - $1.1)) }
        }
        #expect(squaredError(.search) < squaredError(.q4_0) * 0.95)
    }

    @Test("a row and column slice of quantized weights is the slice of their dequantization", arguments: formats)
    func slicing(format: WeightFormat) throws {
        let (rows, cols) = (12, 128)
        let weights = RandomWeights(rows: rows, cols: cols, seed: 6).quantized(format)
        let full = weights.dequantized
        let kept = try weights.slice(rowSegments: [2..<5, 8..<10], columns: 32..<96, name: "w")
        let expected = [2, 3, 4, 8, 9].flatMap { r in full[r * cols + 32..<r * cols + 96] }
        #expect(kept.dequantized == expected)
        #expect(kept.byteCount == 5 * format.bytes(elements: 64) + kept.scales.byteCount(rows: 5))
        if format.blockSize > 1 {
            #expect(throws: NemotronError.self) { try weights.slice(rowSegments: [0..<2], columns: 8..<72, name: "w") }
        }
    }

    @Test(
        "int8 and int4 of a slice equal the whole tensor's quantization, sliced",
        arguments: [
            WeightFormat.int8, .int4,
        ])
    func quantizeSlice(format: WeightFormat) throws {
        let (rows, cols) = (10, 96)
        let source = RandomWeights(rows: rows, cols: cols, seed: 7)
        try source.values.withUnsafeBytes { raw in
            let plain = WeightMatrix(rows: rows, cols: cols, format: .f32, base: raw.baseAddress!)
            let slicedThenQuantized = WeightQuantizer.quantize(
                try plain.slice(rowSegments: [1..<4, 6..<9], columns: 32..<96, name: "w"), to: format)
            let quantizedThenSliced = try WeightQuantizer.quantize(plain, to: format).slice(
                rowSegments: [1..<4, 6..<9], columns: 32..<96, name: "w")
            #expect(slicedThenQuantized.dequantized == quantizedThenSliced.dequantized)
        }
    }
}
