import Foundation

/// Process resource figures for benchmark reports and the soak (`MemorySoak`).
public enum ResourceUsage {
    /// Peak resident set size of this process in bytes (Linux reports `ru_maxrss` in KiB).
    public static var peakResidentBytes: Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    /// Resident bytes now (`VmRSS`), or nil where /proc is not there.
    public static var residentBytes: Int? { status("VmRSS") }

    /// Peak resident bytes since the last `resetPeakResident()` (`VmHWM`), or nil.
    public static var peakResidentSinceReset: Int? { status("VmHWM") }

    /// Starts a new peak: writing 5 to /proc/self/clear_refs resets `VmHWM` to the current RSS.
    /// Returns false where that is not possible.
    @discardableResult
    public static func resetPeakResident() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// A `kB` field of /proc/self/status, in bytes.
    private static func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
