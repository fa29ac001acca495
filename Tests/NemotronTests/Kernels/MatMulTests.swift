import CKernels
import Foundation
import Testing

@testable import Nemotron

@Suite("MatMul against a naive twin")
struct MatMulTests {
    /// y[t, r] = Σ_k x[t, k] · W[r, k] in double precision.
    func naive(_ x: [Float], _ w: [Float], tokens: Int, rows: Int, cols: Int) -> [Float] {
        (0..<tokens).flatMap { t in
            (0..<rows).map { r in
                Float((0..<cols).reduce(0.0) { $0 + Double(x[t * cols + $1]) * Double(w[r * cols + $1]) })
            }
        }
    }

    func bits(_ values: [Float], _ dtype: WeightFormat) -> [UInt16] {
        values.map { dtype == .bf16 ? UInt16($0.bitPattern >> 16) : Float16($0).bitPattern }
    }

    func widen(_ bits: [UInt16], _ dtype: WeightFormat) -> [Float] {
        bits.map { dtype == .bf16 ? Float(bitPattern: UInt32($0) << 16) : Float(Float16(bitPattern: $0)) }
    }

    @Test(
        "linear for every weight dtype, streaming, short-prompt and tiled paths, odd sizes",
        arguments: [WeightFormat.f32, .bf16, .f16], [1, 3, 8, 9, 40, 100, 200])
    func linear(dtype: WeightFormat, tokens: Int) {
        let rows = 37
        let cols = 45
        var random = Xoshiro256(seed: UInt64(tokens))
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let raw = (0..<rows * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let workspace = Workspace(threads: 2)
        let policy = ComputePolicy()
        var y = [Float](repeating: .nan, count: tokens * rows)
        let expected: [Float]
        switch dtype {
        case .f32:
            expected = naive(x, raw, tokens: tokens, rows: rows, cols: cols)
            raw.withUnsafeBytes { w in
                MatMul.linear(
                    x, tokens: tokens, WeightMatrix(rows: rows, cols: cols, format: .f32, base: w.baseAddress!),
                    into: &y, KernelContext(workspace: workspace, policy: policy))
            }
        default:
            let half = bits(raw, dtype)
            expected = naive(x, widen(half, dtype), tokens: tokens, rows: rows, cols: cols)
            half.withUnsafeBytes { w in
                MatMul.linear(
                    x, tokens: tokens, WeightMatrix(rows: rows, cols: cols, format: dtype, base: w.baseAddress!),
                    into: &y, KernelContext(workspace: workspace, policy: policy))
            }
        }
        #expect(maxAbsDifference(y, expected) <= 1e-5)
    }

    @Test(
        "bf16 compute equals a naive product of bf16-rounded activations and weights (decode batches, GEMM)",
        arguments: [9, 12, 13, 40, 64, 65, 100], [45, 96])
    func bf16Compute(tokens: Int, cols: Int) {
        let rows = 70
        var random = Xoshiro256(seed: 5)
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let half = bits((0..<rows * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }, .bf16)
        let workspace = Workspace(threads: 2)
        let policy = ComputePolicy(prefill: .bf16)
        var y = [Float](repeating: .nan, count: tokens * rows)
        half.withUnsafeBytes { w in
            MatMul.linear(
                x, tokens: tokens, WeightMatrix(rows: rows, cols: cols, format: .bf16, base: w.baseAddress!),
                into: &y, KernelContext(workspace: workspace, policy: policy))
        }
        // Activations are rounded to bf16 by the GEMM (over 64 tokens) and by the decode-batch
        // kernel of CPUs where bf16 dot products are the faster (AMD); the f32-FMA batch kernel
        // and the f32 path (no AVX512-BF16) keep them, and their products are exact for bf16 weights.
        let rounds =
            MatMul.hasBF16Dot
            && (tokens > MatMul.bf16BatchMaxTokens || MatMul.bf16DotIsFaster || !MatMul.hasAVX512)
        let input =
            rounds
            ? widen(
                bits(
                    x.map { Float(bitPattern: ($0.bitPattern &+ 0x7FFF &+ (($0.bitPattern >> 16) & 1)) & 0xFFFF_0000) },
                    .bf16), .bf16) : x
        #expect(maxAbsDifference(y, naive(input, widen(half, .bf16), tokens: tokens, rows: rows, cols: cols)) <= 1e-4)
    }

    @Test(
        "the decode-batch and short-prompt kernels against a naive twin, rows and columns off their block sizes",
        arguments: [9, 30, 64, 70])
    func batchKernels(tokens: Int) {
        guard MatMul.hasAVX512 else { return }
        // 41 rows: two 16-row blocks and a partial one; 300 columns: two 128-column chunks and
        // a tail of 44 (not a multiple of 16).
        let (rows, cols) = (41, 300)
        var random = Xoshiro256(seed: UInt64(tokens))
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let half = bits((0..<rows * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }, .bf16)
        let weights = widen(half, .bf16)
        var across = [Float](repeating: .nan, count: ck_tokens_across_width(tokens) * cols)
        ck_tokens_across(x, cols, tokens, cols, &across)
        var y = [Float](repeating: .nan, count: tokens * rows)
        // Rows in two calls, as two threads' blocks.
        ck_gemv_bf16_across(half, cols, 0, 19, across, tokens, &y, rows)
        ck_gemv_bf16_across(half, cols, 19, rows, across, tokens, &y, rows)
        // Each output is the in-order sum of fused multiply-adds: bit for bit, whatever the batch.
        let inOrder = (0..<tokens).flatMap { t in
            (0..<rows).map { r in
                (0..<cols).reduce(Float(0)) { $0.addingProduct(weights[r * cols + $1], x[t * cols + $1]) }
            }
        }
        #expect(y == inOrder)
        #expect(maxAbsDifference(y, naive(x, weights, tokens: tokens, rows: rows, cols: cols)) <= 1e-4)
        // The short-prompt kernel (rows across the lanes, 48-row panels, 8 tokens at a time) gives
        // the same in-order sums: a panel of 19 rows, then one of 22, and a last token group short of 8.
        var panels = [Float](repeating: .nan, count: tokens * rows)
        var scratch = [UInt8](repeating: 0, count: ck_gemm_bf16_rows_scratch())
        ck_gemm_bf16_rows(half, cols, 0, 19, x, tokens, &panels, rows, &scratch)
        ck_gemm_bf16_rows(half, cols, 19, rows, x, tokens, &panels, rows, &scratch)
        #expect(panels == inOrder)
        guard MatMul.hasBF16Dot else { return }
        let stride = HalfKernels.bf16RowStride(cols)
        var rounded = [UInt16](repeating: 0, count: tokens * stride)
        x.withUnsafeBufferPointer { x in
            rounded.withUnsafeMutableBufferPointer { r in
                for t in 0..<tokens {
                    HalfKernels.roundToBF16(
                        x.baseAddress! + t * cols, into: r.baseAddress! + t * stride, cols: cols, stride: stride)
                }
            }
        }
        let roundedX = (0..<tokens).flatMap { t in widen(Array(rounded[t * stride..<t * stride + cols]), .bf16) }
        y = [Float](repeating: .nan, count: tokens * rows)
        ck_gemv_bf16_dp(half, cols, 0, rows, rounded, stride, tokens, &y, rows)
        #expect(
            maxAbsDifference(y, naive(roundedX, widen(half, .bf16), tokens: tokens, rows: rows, cols: cols)) <= 1e-4)
    }

    @Test(
        "a group of products equals each product alone, bit for bit, for every streaming input",
        arguments: [ComputeDType.f32, .bf16, .int8], [1, 3, 20])
    func groups(compute: ComputeDType, tokens: Int) {
        let cols = 64
        var random = Xoshiro256(seed: UInt64(tokens))
        // bf16 weights of three sizes and one int8 matrix; two inputs, each read by two products.
        let shapes = [70, 130, 5]
        let weights = UnsafeMutablePointer<UInt16>.allocate(capacity: shapes.reduce(0, +) * cols)
        let plain = (0..<40 * cols).map { _ in Float(random.nextUnit()) - 0.5 }
        let quantized = plain.withUnsafeBytes {
            WeightQuantizer.quantize(WeightMatrix(rows: 40, cols: cols, format: .f32, base: $0.baseAddress!), to: .int8)
        }
        var matrices: [WeightMatrix] = []
        var offset = 0
        for rows in shapes {
            for i in 0..<rows * cols { weights[offset + i] = UInt16((Float(random.nextUnit()) - 0.5).bitPattern >> 16) }
            matrices.append(WeightMatrix(rows: rows, cols: cols, format: .bf16, base: weights + offset))
            offset += rows * cols
        }
        matrices.append(quantized)
        let inputs = (0..<2).map { _ in
            let x = UnsafeMutablePointer<Float>.allocate(capacity: tokens * cols)
            for i in 0..<tokens * cols { x[i] = Float(random.nextUnit()) * 2 - 1 }
            return UnsafePointer(x)
        }
        let outputs = matrices.map { UnsafeMutablePointer<Float>.allocate(capacity: tokens * $0.rows) }
        defer {
            weights.deallocate()
            for x in inputs { x.deallocate() }
            for y in outputs { y.deallocate() }
        }
        let context = KernelContext(workspace: Workspace(threads: 2), policy: ComputePolicy(prefill: compute))
        let products = matrices.indices.map {
            Product(x: inputs[$0 / 2], tokens: tokens, w: matrices[$0], y: outputs[$0])
        }
        var alone: [[Float]] = []
        for p in products {
            MatMul.linear(p.x, tokens: tokens, p.w, into: p.y, context)
            alone.append(Array(UnsafeBufferPointer(start: p.y, count: tokens * p.w.rows)))
            p.y.initialize(repeating: .nan, count: tokens * p.w.rows)
        }
        MatMul.linear(products, context)
        let together = products.map { Array(UnsafeBufferPointer(start: $0.y, count: tokens * $0.w.rows)) }
        #expect(together == alone)
        #expect(!alone.joined().contains { $0.isNaN })
    }

    @Test("tiled path crosses tile boundaries")
    func manyTiles() {
        let rows = HalfKernels.tileFloats / 64 * 2 + 3
        let cols = 64
        let tokens = 12
        var random = Xoshiro256(seed: 9)
        let half = (0..<rows * cols).map { _ in UInt16((Float(random.nextUnit()) - 0.5).bitPattern >> 16) }
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) }
        var y = [Float](repeating: .nan, count: tokens * rows)
        half.withUnsafeBytes { w in
            MatMul.linear(
                x, tokens: tokens, WeightMatrix(rows: rows, cols: cols, format: .bf16, base: w.baseAddress!),
                into: &y, KernelContext(workspace: Workspace(threads: 2)))
        }
        let last = rows - 1
        let t = tokens - 1
        let expected = (0..<cols).reduce(Float(0)) {
            $0 + x[t * cols + $1] * Float(bitPattern: UInt32(half[last * cols + $1]) << 16)
        }
        #expect(abs(y[t * rows + last] - expected) <= 1e-4)
        #expect(!y.contains { $0.isNaN })
    }

    /// A product's shape for the pool-split tests.
    struct Shape: Sendable, CustomTestStringConvertible {
        let rows: Int
        let cols: Int
        let tokens: Int
        var testDescription: String { "\(rows)×\(cols), \(tokens) tokens" }
    }

    /// Fewer rows than threads, odd sizes, and rows spanning at least 4 sgemm blocks (4096 and
    /// 2048 columns; the test checks that they do).
    static let splitShapes = [
        Shape(rows: 3, cols: 45, tokens: 70), Shape(rows: 37, cols: 77, tokens: 65),
        Shape(rows: 601, cols: 4096, tokens: 9), Shape(rows: 1031, cols: 2048, tokens: 5),
    ]

    @Test(
        "prefill sgemm split over 1-4 threads (widened bf16, f16, int8, int4; f32 weights) against a naive twin",
        arguments: [WeightFormat.f32, .bf16, .f16, .int8, .int4], splitShapes)
    func poolSplitSGEMM(format: WeightFormat, shape: Shape) {
        // Quantized formats take whole blocks of 32 columns.
        let block = format.blockSize
        let (rows, cols, tokens) = (shape.rows, (shape.cols + block - 1) / block * block, shape.tokens)
        if rows > 100 { #expect(MatMul.sgemmBlockRows(rows: rows, cols: cols, threads: 2) < rows / 3) }
        var random = Xoshiro256(seed: UInt64(rows))
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let raw = (0..<rows * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let half = bits(raw, format == .f16 ? .f16 : .bf16)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: rows * cols * 4, alignment: 64)
        defer { storage.deallocate() }
        let source: WeightMatrix
        var widened = raw
        switch format {
        case .f32:
            storage.copyMemory(from: raw, byteCount: rows * cols * 4)
            source = WeightMatrix(rows: rows, cols: cols, format: .f32, base: storage)
        case .bf16, .f16:
            storage.copyMemory(from: half, byteCount: rows * cols * 2)
            source = WeightMatrix(rows: rows, cols: cols, format: format, base: storage)
            widened = widen(half, format)
        default:
            source = raw.withUnsafeBytes {
                WeightQuantizer.quantize(
                    WeightMatrix(rows: rows, cols: cols, format: .f32, base: $0.baseAddress!), to: format)
            }
            QuantKernels.dequantizeRows(source, 0..<rows, into: &widened)
        }
        // y[t, r] and Σ_k |x[t, k] · w[r, k]|, in double precision.
        var expected = [Float](repeating: 0, count: tokens * rows)
        var magnitude = [Float](repeating: 0, count: tokens * rows)
        for t in 0..<tokens {
            for r in 0..<rows {
                var (sum, absolute) = (0.0, 0.0)
                for k in 0..<cols {
                    let product = Double(x[t * cols + k]) * Double(widened[r * cols + k])
                    sum += product
                    absolute += abs(product)
                }
                expected[t * rows + r] = Float(sum)
                magnitude[t * rows + r] = Float(absolute)
            }
        }
        for threads in 1...4 {
            let workspace = Workspace(threads: threads)
            var y = [Float](repeating: .nan, count: tokens * rows)
            if format == .f32 {
                FloatKernels.linear(x, tokens: tokens, source, into: &y, workspace)
            } else {
                HalfKernels.tiled(x, tokens: tokens, source, into: &y, workspace)
            }
            // Blocked f32 sums: within 1e-6 (about 16 ulp) of the sum of the terms' magnitudes.
            var worst: Float = 0
            for i in y.indices {
                worst = max(worst, abs(y[i] - expected[i]) / max(magnitude[i], .leastNormalMagnitude))
            }
            #expect(worst <= 1e-6, "\(threads) threads: relative error \(worst)")
            #expect(!y.contains { $0.isNaN }, "\(threads) threads left rows unwritten")
        }
    }

    @Test("compute_dtype auto picks bf16 only for bf16 weights on a CPU where the bf16 GEMM is the faster")
    func automaticPolicy() {
        #expect(MatMul.bf16GEMMIsFaster == (MatMul.hasBF16Dot && MatMul.bf16DotIsFaster))
        #expect(
            ComputePolicy.resolving(.auto, formats: [.bf16, .f32]).prefill == (MatMul.bf16GEMMIsFaster ? .bf16 : .f32))
        #expect(ComputePolicy.resolving(.auto, formats: [.fp8]).prefill == (MatMul.bf16GEMMIsFaster ? .bf16 : .f32))
        #expect(ComputePolicy.resolving(.auto, formats: [.f32]).prefill == .f32)
        #expect(ComputePolicy.resolving(.auto, formats: [.f16]).prefill == .f32)
        #expect(ComputePolicy.resolving(.auto, formats: [.int4, .int8, .bf16]).prefill == .int8)
        #expect(ComputePolicy.resolving(.f32, formats: [.bf16]).prefill == .f32)
        #expect(ComputePolicy.resolving(.bf16, formats: [.f32]).prefill == .bf16)
    }
}
