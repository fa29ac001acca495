import Foundation

/// Byte-pair encoding on integer symbols, as Hugging Face `tokenizers` does it (no dropout): a
/// piece starts as one symbol per byte-level character, and the adjacent pair with the lowest
/// merge rank (the leftmost among equals) is merged until none applies. With `ignore_merges`, a
/// piece that is itself a vocabulary token is that one token.
struct BPE: Sendable {
    private let merges: MergeTable
    /// With `ignore_merges`: the raw bytes of every model-vocabulary token, to its id.
    private let wholeTokens: [[UInt8]: Int32]?

    init(merges: [(a: Int32, b: Int32, merged: Int32)], wholeTokens: [[UInt8]: Int32]?) {
        self.merges = MergeTable(merges)
        self.wholeTokens = wholeTokens
    }

    /// Appends the tokens of one piece: `bytes` are its raw bytes, `symbols` its initial symbols.
    func encode(bytes: UnsafeBufferPointer<UInt8>, symbols: [Int32], into out: inout [Int32], scratch: inout Scratch) {
        if symbols.count <= 1 {
            out += symbols
            return
        }
        if let wholeTokens, let id = wholeTokens[Array(bytes)] {
            out.append(id)
            return
        }
        scratch.merge(symbols, merges)
        for i in 0..<symbols.count where !scratch.removed[i] { out.append(scratch.symbols[i]) }
    }

    /// Buffers reused from piece to piece: the symbols as a linked list and the queue of pairs.
    struct Scratch {
        var symbols: [Int32] = []
        var previous: [Int32] = []
        var next: [Int32] = []
        var removed: [Bool] = []
        /// Min-heap of rank << 32 | left position.
        var queue: [UInt64] = []

        mutating func merge(_ initial: [Int32], _ merges: MergeTable) {
            let n = initial.count
            symbols = initial
            previous = (0..<Int32(n)).map { $0 - 1 }
            next = (0..<Int32(n)).map { $0 + 1 }
            next[n - 1] = -1
            removed = [Bool](repeating: false, count: n)
            queue.removeAll(keepingCapacity: true)
            for i in 0..<n - 1 { push(i, merges) }
            while let top = pop() {
                let position = Int(top & 0xFFFF_FFFF)
                let rank = Int32(top >> 32)
                let right = Int(next[position])
                // Skip entries made stale by an earlier merge around them.
                guard !removed[position], right >= 0, let merge = merges[symbols[position], symbols[right]],
                    merge.rank == rank
                else {
                    continue
                }
                symbols[position] = merge.id
                removed[right] = true
                next[position] = next[right]
                if next[right] >= 0 { previous[Int(next[right])] = Int32(position) }
                if previous[position] >= 0 { push(Int(previous[position]), merges) }
                push(position, merges)
            }
        }

        /// Queues the pair that starts at `left`, if it has a merge.
        private mutating func push(_ left: Int, _ merges: MergeTable) {
            let right = Int(next[left])
            guard right >= 0, let merge = merges[symbols[left], symbols[right]] else { return }
            queue.append(UInt64(UInt32(merge.rank)) << 32 | UInt64(left))
            var child = queue.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard queue[child] < queue[parent] else { break }
                queue.swapAt(child, parent)
                child = parent
            }
        }

        private mutating func pop() -> UInt64? {
            guard let last = queue.popLast() else { return nil }
            guard !queue.isEmpty else { return last }
            let top = queue[0]
            queue[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < queue.count && queue[left] < queue[smallest] { smallest = left }
                if right < queue.count && queue[right] < queue[smallest] { smallest = right }
                if smallest == parent { break }
                queue.swapAt(parent, smallest)
                parent = smallest
            }
            return top
        }
    }
}

/// Merge ranks by symbol pair, in an open-addressing table (the lookup is BPE's inner loop).
struct MergeTable: Sendable {
    private static let empty = UInt64.max
    private let keys: [UInt64]
    /// rank << 32 | merged id
    private let values: [UInt64]
    private let mask: Int

    /// `merges` in rank order; a pair listed twice keeps its first rank, and entries with
    /// negative ids only hold their rank's place.
    init(_ merges: [(a: Int32, b: Int32, merged: Int32)]) {
        var capacity = 16
        while capacity < merges.count * 2 { capacity *= 2 }
        var keys = [UInt64](repeating: Self.empty, count: capacity)
        var values = [UInt64](repeating: 0, count: capacity)
        mask = capacity - 1
        for (rank, merge) in merges.enumerated() where merge.a >= 0 && merge.b >= 0 {
            let key = Self.key(merge.a, merge.b)
            var slot = Self.slot(key, mask)
            while keys[slot] != Self.empty && keys[slot] != key { slot = (slot + 1) & mask }
            if keys[slot] == key { continue }
            keys[slot] = key
            values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merge.merged))
        }
        self.keys = keys
        self.values = values
    }

    @inline(__always)
    private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 29) & mask
    }

    subscript(a: Int32, b: Int32) -> (rank: Int32, id: Int32)? {
        let key = Self.key(a, b)
        var slot = Self.slot(key, mask)
        while true {
            let found = keys[slot]
            if found == key {
                let value = values[slot]
                return (Int32(truncatingIfNeeded: value >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: value)))
            }
            if found == Self.empty { return nil }
            slot = (slot + 1) & mask
        }
    }
}

/// Token ids of pieces already encoded, keyed by the piece's bytes, in one open-addressing
/// table over flat byte and id pools (a hit allocates nothing). Like `tokenizers`' word cache it
/// changes speed only; it starts over when full.
struct PieceTable {
    private struct Slot {
        var hash: UInt64 = 0
        var keyStart: Int32 = 0
        /// 0: empty (pieces are never empty)
        var keyLength: Int32 = 0
        var valueStart: Int32 = 0
        var valueCount: Int32 = 0
    }

    /// Longer pieces are encoded every time.
    static let maxKeyLength = 128
    private var slots: [Slot]
    private var keys: [UInt8] = []
    private var values: [Int32] = []
    private var count = 0

    init(capacity: Int) {
        slots = [Slot](repeating: Slot(), count: capacity)
    }

    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h ^ (h >> 29)
    }

    /// Appends the cached ids of `bytes` to `out`; false when absent.
    func append(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64, to out: inout [Int32]) -> Bool {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i].keyLength != 0 {
            let slot = slots[i]
            if slot.hash == hash && Int(slot.keyLength) == bytes.count
                && keys.withUnsafeBufferPointer({
                    memcmp($0.baseAddress! + Int(slot.keyStart), bytes.baseAddress!, bytes.count) == 0
                })
            {
                out += values[Int(slot.valueStart)..<Int(slot.valueStart + slot.valueCount)]
                return true
            }
            i = (i + 1) & mask
        }
        return false
    }

    mutating func insert(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64, ids: ArraySlice<Int32>) {
        guard bytes.count <= Self.maxKeyLength else { return }
        if count * 2 >= slots.count || values.count + ids.count > Int(Int32.max / 2) {
            slots = [Slot](repeating: Slot(), count: slots.count)
            keys.removeAll(keepingCapacity: true)
            values.removeAll(keepingCapacity: true)
            count = 0
        }
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i].keyLength != 0 { i = (i + 1) & mask }
        slots[i] = Slot(
            hash: hash, keyStart: Int32(keys.count), keyLength: Int32(bytes.count), valueStart: Int32(values.count),
            valueCount: Int32(ids.count))
        keys += bytes
        values += ids
        count += 1
    }
}

/// The piece table a tokenizer and its copies share across calls. A call that finds it in use
/// by another thread uses a table of its own instead of waiting.
final class PieceCache: @unchecked Sendable {
    private let lock = NSLock()
    private var table = PieceTable(capacity: 1 << 16)

    func withTable<R>(_ body: (inout PieceTable) -> R) -> R {
        if lock.try() {
            defer { lock.unlock() }
            return body(&table)
        }
        var own = PieceTable(capacity: 1 << 10)
        return body(&own)
    }
}
