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
