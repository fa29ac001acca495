import CKernels
import Foundation

/// Measures how fast this machine reads memory with the pool's threads, over the checkpoint's own
/// mapped weights (the bytes decode streams), so decode speed can be stated as a fraction of the
/// hardware's read bandwidth measured in the same run.
public enum MemoryBandwidth {
    /// Best of `repeats` passes over all weight files, in bytes per second.
    public static func read(_ checkpoint: Checkpoint, pool: ThreadPool, repeats: Int = 3) -> Double {
        let regions = checkpoint.files.compactMap { file in
            file.entries.values.min { $0.offset < $1.offset }.map { (file, $0) }
        }
        .map { file, first in (base: UncheckedSendable(file.pointer(first) - first.offset), bytes: file.fileSize) }
        let total = regions.reduce(0) { $0 + $1.bytes }
        var best = 0.0
        for _ in 0..<repeats {
            let start = Date()
            for region in regions {
                let chunk = 1 << 20
                pool.forRanges((region.bytes + chunk - 1) / chunk) { chunks in
                    let low = chunks.lowerBound * chunk
                    let high = min(region.bytes, chunks.upperBound * chunk)
                    sink(ck_read_sum(region.base.value + low, high - low))
                }
            }
            best = max(best, Double(total) / Date().timeIntervalSince(start))
        }
        return best
    }

    /// Keeps the probe's result observable so the reads are not optimised away.
    @inline(never) private static func sink(_ value: Float) {
        if value.isNaN && value.sign == .minus && value.exponent == 1234 { print(value) }
    }
}
