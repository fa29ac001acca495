import Foundation

/// Process resource figures for benchmark reports.
public enum ResourceUsage {
    /// Peak resident set size of this process in bytes (Linux reports `ru_maxrss` in KiB).
    public static var peakResidentBytes: Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }
}
