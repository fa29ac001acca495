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

    /// The sampler before top_k took a heap: every token sorted (logit descending, then id),
    /// the first top_k kept, softmax, the top_p prefix, a draw along that order. `sorted: false`
    /// keeps id order (what the sampler does with neither top_k nor top_p).
    func naiveDraws(_ logits: [Float], _ parameters: SamplingParameters, count: Int, sorted: Bool = true) -> [Int] {
        var random = Xoshiro256(seed: parameters.seed)
        return (0..<count).map { _ in
            var candidates = logits.indices.map { (id: $0, logit: logits[$0] / parameters.temperature) }
            if sorted { candidates.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) } }
            if parameters.topK > 0 { candidates = Array(candidates.prefix(parameters.topK)) }
            let top = candidates.map(\.logit).max()!
            var probabilities = candidates.map { expf($0.logit - top) }
            let total = probabilities.reduce(0, +)
            probabilities = probabilities.map { $0 / total }
            if parameters.topP < 1 {
                var cumulative: Float = 0
                var keep = 0
                while keep < probabilities.count && (keep == 0 || cumulative < parameters.topP) {
                    cumulative += probabilities[keep]
                    keep += 1
                }
                probabilities = probabilities.prefix(keep).map { $0 / cumulative }
            }
            var draw = Float(random.nextUnit())
            for (index, p) in probabilities.enumerated() {
                draw -= p
                if draw < 0 { return candidates[index].id }
            }
            return candidates[probabilities.count - 1].id
        }
    }

    @Test(
        "top_k through a heap draws the ids a full sort draws; top_p alone likewise; neither: id order",
        arguments: [(40, Float(1)), (1, 1), (7, 0.8), (5000, 1), (0, 0.9), (0, 1)])
    func largeVocabulary(topK: Int, topP: Float) {
        var random = Xoshiro256(seed: 5)
        // 3000 logits on a coarse grid, so ties straddle the k-th place.
        let logits = (0..<3000).map { _ in Float(Int(random.nextUnit() * 40)) / 4 }
        let parameters = SamplingParameters(temperature: 0.7, topK: topK, topP: topP, seed: 9)
        var sampler = Sampler(parameters)
        let draws = (0..<100).map { _ in sampler.sample(logits[...]) }
        let sorted = topK > 0 || topP < 1
        #expect(draws == naiveDraws(logits, parameters, count: 100, sorted: sorted))
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
