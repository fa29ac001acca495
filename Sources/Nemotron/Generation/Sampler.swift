import Foundation

/// How the next token is chosen: greedy when temperature is 0, else temperature, top-k and
/// top-p (nucleus) filtering, then a draw from a seeded generator, so runs repeat exactly.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float = 0
    /// 0 keeps every token.
    public var topK: Int = 0
    /// 1 keeps every token.
    public var topP: Float = 1
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public var isGreedy: Bool { temperature == 0 }
}

public struct Sampler {
    public let parameters: SamplingParameters
    private var random: Xoshiro256

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        random = Xoshiro256(seed: parameters.seed)
    }

    /// Chooses a token id from one row of logits `[V]`.
    public mutating func sample<Row: RandomAccessCollection>(_ logits: Row) -> Int
    where Row.Element == Float, Row.Index == Int {
        let base = logits.startIndex
        if parameters.isGreedy { return Self.argmax(logits) - base }
        var candidates = Self.candidates(logits, parameters)
        let top = candidates.reduce(-Float.infinity) { max($0, $1.logit) }
        var probabilities = candidates.map { expf($0.logit - top) }
        let total = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / total }
        if parameters.topP < 1 {
            // The nucleus: the fewest best candidates whose probabilities reach top_p.
            var order = BestFirst(candidates, sorted: parameters.topK > 0 && parameters.topK < logits.count)
            var cumulative: Float = 0
            var kept: [Int] = []
            while kept.isEmpty || cumulative < parameters.topP, let i = order.next() {
                cumulative += probabilities[i]
                kept.append(i)
            }
            candidates = kept.map { candidates[$0] }
            probabilities = kept.map { probabilities[$0] / cumulative }
        }
        var draw = Float(random.nextUnit())
        for (index, p) in probabilities.enumerated() {
            draw -= p
            if draw < 0 { return candidates[index].id }
        }
        return candidates[probabilities.count - 1].id
    }

    typealias Candidate = (id: Int, logit: Float)

    /// Draw order: logit descending, then id.
    static func better(_ a: Candidate, _ b: Candidate) -> Bool {
        a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
    }

    /// The candidates of a draw, `(id, logit / temperature)`: with `top_k`, the k best in draw
    /// order, found in one pass through a k-entry heap; without, every token in id order (a draw
    /// needs no order, and `top_p` takes its nucleus through `BestFirst`). Per draw from 131072
    /// logits (this file built with `swiftc -O -wmo`, this VM), against sorting every token:
    /// temperature alone 1.4 against 15.2 ms, top_k 40 0.21 against 14.0, top_p 0.95 5.2 against 14.8.
    static func candidates<Row: RandomAccessCollection>(_ logits: Row, _ parameters: SamplingParameters)
        -> [Candidate]
    where Row.Element == Float, Row.Index == Int {
        let base = logits.startIndex
        let scaled = logits.indices.lazy.map { (id: $0 - base, logit: logits[$0] / parameters.temperature) }
        let k = parameters.topK
        guard k > 0 && k < logits.count else { return Array(scaled) }
        // A heap of the k best so far, the worst of them at the root.
        var kept = BinaryHeap<Candidate>([], first: { better($1, $0) })
        for c in scaled {
            if kept.count < k {
                kept.push(c)
            } else if better(c, kept.root!) {
                kept.replaceRoot(with: c)
            }
        }
        return kept.elements.sorted(by: better)
    }

    /// Indices of candidates in draw order, one at a time: in turn when they are sorted already,
    /// else popped from a heap built in one pass (the nucleus is usually a small part of the
    /// vocabulary, so most candidates are never ordered).
    struct BestFirst {
        private var heap: BinaryHeap<Int>?
        private var position = 0
        private let count: Int

        init(_ candidates: [Candidate], sorted: Bool) {
            count = candidates.count
            if !sorted {
                heap = BinaryHeap(Array(candidates.indices), first: { better(candidates[$0], candidates[$1]) })
            }
        }

        mutating func next() -> Int? {
            if heap != nil { return heap!.popRoot() }
            guard position < count else { return nil }
            position += 1
            return position - 1
        }
    }

    /// A binary heap whose root is the element `first` puts before every other.
    struct BinaryHeap<Element> {
        private(set) var elements: [Element]
        private let first: (Element, Element) -> Bool

        /// Built in one pass over `elements` (bottom-up).
        init(_ elements: [Element], first: @escaping (Element, Element) -> Bool) {
            self.elements = elements
            self.first = first
            for i in stride(from: elements.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
        }

        var count: Int { elements.count }
        var root: Element? { elements.first }

        mutating func push(_ element: Element) {
            elements.append(element)
            var i = elements.count - 1
            while i > 0 && first(elements[i], elements[(i - 1) / 2]) {
                elements.swapAt(i, (i - 1) / 2)
                i = (i - 1) / 2
            }
        }

        mutating func replaceRoot(with element: Element) {
            elements[0] = element
            siftDown(0)
        }

        mutating func popRoot() -> Element? {
            guard let root = elements.first else { return nil }
            elements[0] = elements[elements.count - 1]
            elements.removeLast()
            if !elements.isEmpty { siftDown(0) }
            return root
        }

        private mutating func siftDown(_ start: Int) {
            var i = start
            while true {
                let (left, right) = (2 * i + 1, 2 * i + 2)
                var top = i
                if left < elements.count && first(elements[left], elements[top]) { top = left }
                if right < elements.count && first(elements[right], elements[top]) { top = right }
                if top == i { return }
                elements.swapAt(i, top)
                i = top
            }
        }
    }

    /// The first index of the largest value (as `argmax`), or nil when a value is NaN or ±∞: one
    /// pass of 16 lanes for the maximum and the check (a logit row is the vocabulary's width, and
    /// a decode step scans one per sequence), then the first index that holds it.
    public static func argmaxIfFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        guard let p = values.baseAddress, values.count > 0 else { return nil }
        let n = values.count
        var best = SIMD16<Float>(repeating: -.infinity)
        var poison = SIMD16<Float>()  // x − x: NaN for NaN and ±∞, else 0
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            best = best.replacing(with: v, where: v .> best)
            poison += v - v
            i += 16
        }
        var largest = best.max()
        var tail: Float = 0
        for j in i..<n {
            largest = max(largest, p[j])
            tail += p[j] - p[j]
        }
        guard !(poison.sum() + tail).isNaN else { return nil }
        var first = 0
        while p[first] != largest { first += 1 }
        return first
    }

    /// Index of the largest value; the first one on ties.
    public static func argmax<Row: RandomAccessCollection>(_ values: Row) -> Int
    where Row.Element == Float, Row.Index == Int {
        var best = values.startIndex
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast and identical on every platform.
struct Xoshiro256 {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
