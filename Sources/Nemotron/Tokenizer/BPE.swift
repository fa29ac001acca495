/// Byte-pair encoding on integer symbols: a piece starts as one symbol per byte-level
/// character and the adjacent pair with the lowest merge rank is merged until none applies
/// (Hugging Face `tokenizers` BPE, no dropout). Results are cached per piece.
struct BPE {
    /// `pair(a, b)` → (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private var cache: [ArraySlice<Int32>: [Int32]] = [:]

    init(merges: [UInt64: (rank: Int32, id: Int32)]) {
        self.merges = merges
    }

    static func pair(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    mutating func encode(_ symbols: ArraySlice<Int32>) -> [Int32] {
        if symbols.count <= 1 { return Array(symbols) }
        if let cached = cache[symbols] { return cached }
        var word = Array(symbols)
        while word.count > 1 {
            var best: (rank: Int32, id: Int32, at: Int)?
            for i in 0..<word.count - 1 {
                if let merge = merges[Self.pair(word[i], word[i + 1])], merge.rank < best?.rank ?? .max {
                    best = (merge.rank, merge.id, i)
                }
            }
            guard let best else { break }
            // Merge every occurrence of this pair, left to right (the same pair has one rank).
            let (a, b) = (word[best.at], word[best.at + 1])
            var merged: [Int32] = []
            merged.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i + 1 < word.count && word[i] == a && word[i + 1] == b {
                    merged.append(best.id)
                    i += 2
                } else {
                    merged.append(word[i])
                    i += 1
                }
            }
            word = merged
        }
        if cache.count < 100_000 { cache[symbols] = word }
        return word
    }
}
