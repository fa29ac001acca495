import CKernels
import Foundation
import Testing

@testable import Nemotron

@Suite("Prompt attention (GEMM path) against a naive twin")
struct AttentionTests {
    /// q heads, KV heads, head size, prompt rows, cached positions before them, and the prompt's
    /// first row in the batch.
    struct Case: Sendable, CustomTestStringConvertible {
        let heads: Int
        let kvHeads: Int
        let headDim: Int
        let rows: Int
        let past: Int
        let offset: Int
        var testDescription: String {
            "\(heads)/\(kvHeads) heads of \(headDim), \(rows) rows after \(past), from row \(offset)"
        }
    }

    /// One row block and fewer heads than threads; blocks of `promptBlockRows` and a short last
    /// one; a prompt after cached positions; grouped queries at odd sizes.
    static let cases = [
        Case(heads: 1, kvHeads: 1, headDim: 16, rows: 13, past: 0, offset: 0),
        Case(heads: 3, kvHeads: 1, headDim: 24, rows: 150, past: 0, offset: 7),
        Case(heads: 4, kvHeads: 2, headDim: 32, rows: 65, past: 37, offset: 0),
        Case(heads: 2, kvHeads: 2, headDim: 128, rows: 64, past: 5, offset: 3),
    ]

    @Test("each head's causal softmax(q·kᵀ·scale)·v on 1-4 threads within 2e-6 of double precision", arguments: cases)
    func promptAttention(c: Case) {
        let (dh, n, context) = (c.headDim, c.rows, c.past + c.rows)
        let (qWidth, kvWidth, batchRows) = (c.heads * dh, c.kvHeads * dh, c.offset + c.rows)
        let kvHeads = (0..<c.heads).map { $0 / (c.heads / c.kvHeads) }
        let scale = 1 / Float(dh).squareRoot()
        var random = Xoshiro256(seed: UInt64(n * 31 + c.past))
        let q = (0..<batchRows * qWidth).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let keys = (0..<context * kvWidth).map { _ in Float(random.nextUnit()) * 2 - 1 }
        let values = (0..<context * kvWidth).map { _ in Float(random.nextUnit()) * 2 - 1 }
        var expected = [Float](repeating: .nan, count: batchRows * qWidth)
        for j in 0..<c.heads {
            let kv = kvHeads[j]
            for t in 0..<n {
                let row = c.offset + t
                let seen = c.past + t + 1
                let scores = (0..<seen).map { s in
                    Double(scale)
                        * (0..<dh).reduce(0.0) {
                            $0 + Double(q[row * qWidth + j * dh + $1]) * Double(keys[s * kvWidth + kv * dh + $1])
                        }
                }
                let top = scores.max()!
                let weights = scores.map { exp($0 - top) }
                let total = weights.reduce(0, +)
                for e in 0..<dh {
                    let sum = (0..<seen).reduce(0.0) { $0 + weights[$1] * Double(values[$1 * kvWidth + kv * dh + e]) }
                    expected[row * qWidth + j * dh + e] = Float(sum / total)
                }
            }
        }
        for threads in 1...4 {
            var attended = [Float](repeating: .nan, count: batchRows * qWidth)
            Attention.attendWithGEMM(
                q, rows: c.offset..<batchRows, past: c.past, keys: keys, values: values, kvHeads: kvHeads,
                headDim: dh, kvWidth: kvWidth, scale: scale, workspace: Workspace(threads: threads), into: &attended)
            // Rows before the prompt stay as they were (NaN in both); a row written on one side only counts as ∞.
            let difference =
                zip(attended, expected).map { $0.isNaN != $1.isNaN ? .infinity : $0.isNaN ? 0 : abs($0 - $1) }.max()
                ?? 0
            #expect(difference <= 2e-6, "\(threads) threads: max |Δ| \(difference)")
        }
    }
}

/// One decode query (`ck_attention_scores`, the softmax, `ck_attention_values`) against the same
/// computed in double precision, at head sizes that fill 16-float vectors, and that do not, and
/// cache lengths around a 16-position block.
@Suite("Decode attention kernels against a naive twin")
struct DecodeAttentionKernelTests {
    @Test(
        "scores, max and weighted values within 2e-6 of double precision",
        arguments: [(48, 1), (48, 17), (64, 16), (128, 100), (20, 33), (80, 250)])
    func decodeQuery(headDim dh: Int, length: Int) {
        guard MatMul.hasAVX512 else { return }
        var random = Xoshiro256(seed: UInt64(dh * 1000 + length))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float(random.nextUnit()) * 2 - 1 } }
        // The cache rows hold two heads' keys; the query reads the second (stride = 2·dh).
        let stride = 2 * dh
        let (q, keys, cachedValues) = (values(dh), values(length * stride), values(length * stride))
        let scale = 1 / Float(dh).squareRoot()
        var scores = [Float](repeating: .nan, count: length)
        let maxScore = keys.withUnsafeBufferPointer {
            ck_attention_scores(q, $0.baseAddress! + dh, stride, length, dh, scale, &scores)
        }
        let naive = (0..<length).map { s in
            Double(scale) * (0..<dh).reduce(0.0) { $0 + Double(q[$1]) * Double(keys[s * stride + dh + $1]) }
        }
        for s in 0..<length { #expect(abs(Double(scores[s]) - naive[s]) <= 2e-6) }
        #expect(abs(Double(maxScore) - naive.max()!) <= 2e-6)
        let total = Activation.expSum(&scores, count: length, shift: maxScore)
        var out = [Float](repeating: .nan, count: dh)
        cachedValues.withUnsafeBufferPointer {
            ck_attention_values(scores, $0.baseAddress! + dh, stride, length, dh, 1 / total, &out)
        }
        let weights = naive.map { Foundation.exp($0 - naive.max()!) }
        let sum = weights.reduce(0, +)
        for v in 0..<dh {
            let expected =
                (0..<length).reduce(0.0) { $0 + weights[$1] * Double(cachedValues[$1 * stride + dh + v]) } / sum
            #expect(abs(Double(out[v]) - expected) <= 2e-6)
        }
    }
}
