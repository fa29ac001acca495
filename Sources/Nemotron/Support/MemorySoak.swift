import Foundation

/// Runs many operations in this process and records the peak resident memory of each window of
/// them, so that growth over a long run shows: memory that is held per operation and never
/// given back (a leak, a cache without bound) makes later windows' peaks climb. `scripts/soak.sh`
/// runs generations through it; a server can run its requests through it the same way.
public struct MemorySoak {
    /// One window: its operations and the peak resident bytes while they ran.
    public struct Window: Sendable {
        public let operations: Range<Int>
        public let peakResidentBytes: Int
        public let seconds: Double
    }

    public let count: Int
    public let windowSize: Int

    public init(count: Int, windowSize: Int = 100) {
        precondition(count > 0 && windowSize > 0, "a soak needs operations and windows")
        self.count = count
        self.windowSize = windowSize
    }

    /// Calls `operation(i)` for i in 0..<count; `progress(window)` after each window.
    public func run(_ operation: (Int) throws -> Void, progress: (Window) -> Void = { _ in }) rethrows -> [Window] {
        var windows: [Window] = []
        var start = 0
        while start < count {
            let end = min(count, start + windowSize)
            let resets = ResourceUsage.resetPeakResident()
            let clock = Date()
            for i in start..<end { try operation(i) }
            let peak = resets ? ResourceUsage.peakResidentSinceReset ?? 0 : ResourceUsage.peakResidentBytes
            let window = Window(
                operations: start..<end, peakResidentBytes: peak, seconds: Date().timeIntervalSince(clock))
            windows.append(window)
            progress(window)
            start = end
        }
        return windows
    }

    /// The last window's peak over the first's, minus 1 (0.05: 5 % higher).
    public static func growth(_ windows: [Window]) -> Double {
        guard let first = windows.first, let last = windows.last, first.peakResidentBytes > 0 else { return 0 }
        return Double(last.peakResidentBytes) / Double(first.peakResidentBytes) - 1
    }
}
