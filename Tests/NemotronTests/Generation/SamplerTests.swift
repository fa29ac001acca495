import Foundation
import Testing

@testable import Nemotron

@Suite("Sampler")
struct SamplerTests {
    let logits: [Float] = [0.1, 2.0, -1.0, 2.0, 1.5, 0.0]

    @Test("greedy takes the first maximum")
    func greedy() {
        var sampler = Sampler(SamplingParameters())
        #expect(sampler.sample(logits[...]) == 1)
        #expect(sampler.sample(logits[2...]) == 1)
    }

    @Test("the vectorised argmax equals the scalar one, ties and tails included, and refuses NaN and ±∞")
    func vectorisedArgmax() {
        var random = Xoshiro256(seed: 11)
        for count in [1, 15, 16, 17, 100, 8192] {
            // Values from a few levels, so the maximum repeats.
            var values = (0..<count).map { _ in Float(Int(random.nextUnit() * 7)) - 3 }
            values.withUnsafeBufferPointer { #expect(Sampler.argmaxIfFinite($0) == Sampler.argmax(values)) }
            for bad in [Float.nan, .infinity, -.infinity] {
                let at = Int(random.nextUnit() * Double(count))
                let kept = values[at]
                values[at] = bad
                values.withUnsafeBufferPointer { #expect(Sampler.argmaxIfFinite($0) == nil) }
                values[at] = kept
            }
        }
    }

    /// The sampler's rule written plainly: with top_k, every token sorted (logit descending, then
    /// id) and the first k kept; softmax over the kept ones in their order; with top_p, the kept
    /// ones (with their probabilities) sorted and the shortest prefix reaching top_p; a draw
    /// along the final order.
    func naiveDraws(_ logits: [Float], _ parameters: SamplingParameters, count: Int) -> [Int] {
        func better(_ a: (id: Int, p: Float, logit: Float), _ b: (id: Int, p: Float, logit: Float)) -> Bool {
            a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
        }
        var random = Xoshiro256(seed: parameters.seed)
        return (0..<count).map { _ in
            var candidates = logits.indices.map { (id: $0, p: Float(0), logit: logits[$0] / parameters.temperature) }
            if parameters.topK > 0 && parameters.topK < logits.count {
                candidates.sort(by: better)
                candidates = Array(candidates.prefix(parameters.topK))
            }
            let top = candidates.map(\.logit).max()!
            let weights = candidates.map { expf($0.logit - top) }
            let total = weights.reduce(0, +)
            for i in candidates.indices { candidates[i].p = weights[i] / total }
            if parameters.topP < 1 {
                candidates.sort(by: better)
                var cumulative: Float = 0
                var keep = 0
                while keep < candidates.count && (keep == 0 || cumulative < parameters.topP) {
                    cumulative += candidates[keep].p
                    keep += 1
                }
                candidates = candidates.prefix(keep).map { ($0.id, $0.p / cumulative, $0.logit) }
            }
            var draw = Float(random.nextUnit())
            for c in candidates {
                draw -= c.p
                if draw < 0 { return c.id }
            }
            return candidates[candidates.count - 1].id
        }
    }

    @Test(
        "top_k through a heap and top_p through best-first pops draw the ids of the plain rule",
        arguments: [(40, Float(1)), (1, 1), (7, 0.8), (5000, 1), (0, 0.9), (0, 0.3), (5000, 0.9), (0, 1)])
    func largeVocabulary(topK: Int, topP: Float) {
        var random = Xoshiro256(seed: 5)
        // 3000 logits on a coarse grid, so ties straddle the k-th place.
        let logits = (0..<3000).map { _ in Float(Int(random.nextUnit() * 40)) / 4 }
        let parameters = SamplingParameters(temperature: 0.7, topK: topK, topP: topP, seed: 9)
        var sampler = Sampler(parameters)
        let draws = (0..<100).map { _ in sampler.sample(logits[...]) }
        #expect(draws == naiveDraws(logits, parameters, count: 100))
        if topK > 0 && topK < logits.count {
            let kept = Set(Sampler.candidates(logits[...], parameters).map(\.id))
            let threshold = logits.sorted(by: >)[topK - 1]
            #expect(kept.count == topK && kept.allSatisfy { logits[$0] >= threshold })
        }
    }

    @Test("top_k 1 is greedy at any temperature")
    func topKOne() {
        var sampler = Sampler(SamplingParameters(temperature: 5, topK: 1, seed: 1))
        #expect((0..<20).allSatisfy { _ in sampler.sample(logits[...]) == 1 })
    }

    @Test("top_k and top_p restrict the candidates")
    func restricts() {
        var topK = Sampler(SamplingParameters(temperature: 1, topK: 3, seed: 2))
        #expect((0..<200).allSatisfy { _ in [1, 3, 4].contains(topK.sample(logits[...])) })
        var topP = Sampler(SamplingParameters(temperature: 1, topP: 0.5, seed: 3))
        #expect((0..<200).allSatisfy { _ in [1, 3].contains(topP.sample(logits[...])) })
    }

    @Test("a seed reproduces the draws, another seed differs")
    func seeded() {
        func draws(_ seed: UInt64) -> [Int] {
            var sampler = Sampler(SamplingParameters(temperature: 1, seed: seed))
            return (0..<50).map { _ in sampler.sample(logits[...]) }
        }
        #expect(draws(7) == draws(7))
        #expect(draws(7) != draws(8))
        #expect(Set(draws(7)).count > 2)
    }

    @Test("MoE router top picks the highest, lower index on ties")
    func routerTop() {
        #expect(MoERouter.top(2, of: [0.5, 0.9, 0.9, 0.1]).map(\.index) == [1, 2])
    }
}
