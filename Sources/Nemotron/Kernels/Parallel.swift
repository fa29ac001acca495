import Dispatch

/// Intra-rank threading for loops outside BLAS: splits `0..<count` into `threads` contiguous
/// parts (each a multiple of `alignment` except the last) and runs them concurrently.
/// Tensor parallelism across ranks is separate (Distributed/).
enum Parallel {
    static func forRanges(_ count: Int, threads: Int, alignment: Int = 1, minimumPerThread: Int = 1,
                          _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads, count / max(minimumPerThread, 1)))
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let units = (count + alignment - 1) / alignment
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let unitRange = ShardPlan.part(units, parts, part)
                let range = min(count, unitRange.lowerBound * alignment)..<min(count, unitRange.upperBound * alignment)
                if !range.isEmpty { shared.value(range) }
            }
        }
    }
}

/// Hands a value that is only read, or written at disjoint places, to concurrent workers.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
