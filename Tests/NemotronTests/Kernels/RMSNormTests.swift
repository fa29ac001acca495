import Testing

@testable import Nemotron

@Suite("RMSNorm against a naive twin")
struct RMSNormTests {
    @Test("rows are normalised independently", arguments: [1, 7, 64, 67])
    func rows(width: Int) {
        var random = Xoshiro256(seed: UInt64(width))
        let x = (0..<3 * width).map { _ in Float(random.nextUnit()) * 4 - 2 }
        let weight = (0..<width).map { _ in Float(random.nextUnit()) + 0.5 }
        var out = [Float](repeating: 0, count: x.count)
        RMSNorm.apply(x, weight: weight, eps: 1e-5, tokens: 3, width: width, into: &out)
        for t in 0..<3 {
            let row = x[t * width..<(t + 1) * width]
            let rms = (row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(width) + 1e-5).squareRoot()
            for j in 0..<width {
                #expect(abs(Double(out[t * width + j]) - Double(weight[j]) * Double(x[t * width + j]) / rms) <= 1e-5)
            }
        }
    }
}
