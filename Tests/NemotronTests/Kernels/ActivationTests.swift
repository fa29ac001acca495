import Foundation
import Testing

@testable import Nemotron

/// The vectorised exponential and the activations built on it, against libm's `expf` (the
/// naive twin), in ulp of the result.
@Suite("Activations")
struct ActivationTests {
    /// Distance in units in the last place between two positive normal floats.
    func ulps(_ a: Float, _ b: Float) -> Int { abs(Int(a.bitPattern) - Int(b.bitPattern)) }

    @Test("exp within 2 ulp of expf over [−87, 88], NaN stays NaN, the extremes stay finite")
    func exponential() {
        var worst = 0
        var x: Float = -87
        while x < 88 {
            let lanes = SIMD16<Float>((0..<16).map { x + Float($0) * 0.000_37 })
            let e = Activation.exp(lanes)
            for i in 0..<16 { worst = max(worst, ulps(e[i], expf(lanes[i]))) }
            x += 0.0061
        }
        #expect(worst <= 2, "worst \(worst) ulp")
        var special = SIMD16<Float>(repeating: 0)
        special[0] = .nan
        special[1] = -1000
        special[2] = 1000
        special[3] = -.infinity
        let e = Activation.exp(special)
        #expect(e[0].isNaN)
        #expect(e[1] >= 0 && e[1] < 1e-37)
        #expect(e[2].isFinite && e[2] > 1e38)
        #expect(e[3] >= 0 && e[3] < 1e-37)
        #expect(e[4] == 1)
    }

    @Test("silu, gated silu and softmax numerators over arrays with tails, against the scalar forms")
    func arrays() {
        var random = Xoshiro256(seed: 3)
        let count = 53
        let x = (0..<count).map { _ in Float(random.nextUnit()) * 40 - 20 }
        let gate = (0..<count).map { _ in Float(random.nextUnit()) * 40 - 20 }
        var silu = x
        Activation.silu(&silu, count: count)
        var gated = x
        Activation.multiplySilu(&gated, gate: gate, count: count)
        var numerators = x
        let shift = x.max()!
        let total = Activation.expSum(&numerators, count: count, shift: shift)
        for i in 0..<count {
            #expect(abs(silu[i] - Activation.silu(x[i])) <= 4e-7 * max(1, abs(x[i])))
            #expect(abs(gated[i] - x[i] * Activation.silu(gate[i])) <= 4e-7 * max(1, abs(gated[i])))
            #expect(abs(numerators[i] - expf(x[i] - shift)) <= 3e-7 * numerators[i] + 1e-37)
        }
        #expect(abs(total - numerators.reduce(0, +)) <= 1e-5 * total)
    }
}
