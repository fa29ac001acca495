import CKernels
import Testing

@testable import Nemotron

/// The AMX bf16 GEMM (`Sources/CKernels/amx.c`, `HalfKernels.amxGEMM`): its activation layout
/// on every CPU with AVX512-BF16, its products where the CPU has AMX tiles.
@Suite("AMX bf16 GEMM against naive twins")
struct AMXGEMMTests {
    /// The bf16 bits of `value` rounded to nearest even (finite values).
    static func bf16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        return UInt16((bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

    static func widen(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @Test(
        "activations packed in 32-token blocks of column pairs, rounded to bf16, zero past the last token",
        .enabled(if: MatMul.hasBF16Dot, "needs AVX512-BF16"), arguments: [1, 33, 70])
    func packedLayout(tokens: Int) {
        let cols = 96
        let pairs = cols / 2
        var random = Xoshiro256(seed: UInt64(tokens))
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 4 - 2 }
        let words = ck_amx_packed_words(tokens, cols)
        let blocks = (tokens + 31) / 32
        #expect(words == blocks * 32 * pairs)
        var packed = [UInt32](repeating: 0xdead_beef, count: words)
        // Two ranges of pairs, as two threads would pack them; the second off a 16-pair step.
        packed.withUnsafeMutableBufferPointer { p in
            ck_amx_pack_x(x, tokens, cols, 0, 16, p.baseAddress)
            ck_amx_pack_x(x, tokens, cols, 16, pairs, p.baseAddress)
        }
        for t in 0..<blocks * 32 {
            for p in 0..<pairs {
                let expected =
                    t < tokens
                    ? UInt32(Self.bf16(x[t * cols + 2 * p])) | UInt32(Self.bf16(x[t * cols + 2 * p + 1])) << 16 : 0
                #expect(packed[t / 32 * pairs * 32 + p * 32 + t % 32] == expected, "pair \(p), token \(t)")
            }
        }
    }

    @Test(
        "AMX GEMM equals the bf16 products in f64, tail rows and tokens included (up to 32 tokens: W read in place)",
        .enabled(if: MatMul.hasAMX, "needs AMX tiles (Intel Sapphire Rapids or later)"),
        arguments: [
            (rows: 100, tokens: 65), (rows: 64, tokens: 128), (rows: 7, tokens: 200), (rows: 100, tokens: 16),
            (rows: 70, tokens: 9), (rows: 96, tokens: 32),
        ])
    func products(shape: (rows: Int, tokens: Int)) {
        let (rows, tokens, cols) = (shape.rows, shape.tokens, 160)
        var random = Xoshiro256(seed: UInt64(rows))
        let w = (0..<rows * cols).map { _ in Self.bf16(Float(random.nextUnit()) - 0.5) }
        let x = (0..<tokens * cols).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let ldy = rows + 5
        var y = [Float](repeating: .nan, count: tokens * ldy)
        for threads in [1, 3] {
            let context = KernelContext(workspace: Workspace(threads: threads), policy: ComputePolicy(prefill: .bf16))
            #expect(context.policy.usesAMX)
            w.withUnsafeBufferPointer { w in
                HalfKernels.bf16GEMM(
                    x, tokens: tokens, weights: w.baseAddress!, rows: rows, cols: cols, into: &y, ldy: ldy, context)
            }
            var worst: Float = 0
            for t in 0..<tokens {
                for r in 0..<rows {
                    let exact = (0..<cols).reduce(0.0) {
                        $0 + Double(Self.widen(w[r * cols + $1])) * Double(Self.widen(Self.bf16(x[t * cols + $1])))
                    }
                    worst = max(worst, abs(y[t * ldy + r] - Float(exact)))
                }
                // Columns past `rows` in each output row are not written.
                #expect(y[t * ldy + rows..<(t + 1) * ldy].allSatisfy { $0.isNaN })
            }
            // f32 sums of 160 products of size ≤ 1: rounding stays far below 1e-4.
            #expect(worst < 1e-4, "threads \(threads): max |Δ| \(worst)")
        }
    }
}
