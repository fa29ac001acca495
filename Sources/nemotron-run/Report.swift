import Foundation
import NemotronMPI

/// Output helpers shared by the commands; only rank 0 writes.
enum Report {
    static func json(_ object: [String: Any]) throws -> String {
        String(
            decoding: try JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    /// A status line on stderr, keeping stdout for results.
    static func note(_ text: String) {
        guard MPICommunicator.world.isRoot else { return }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func rate(_ value: Double) -> String { String(format: "%.1f", value) }
    static func gigabytes(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }
}
