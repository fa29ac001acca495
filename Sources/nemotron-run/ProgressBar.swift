import Foundation
import NemotronMPI

/// A one-line progress bar on stderr, drawn only when stderr is a terminal and only by rank 0.
struct ProgressBar {
    let label: String
    let visible = isatty(STDERR_FILENO) != 0 && MPICommunicator.world.isRoot

    func update(_ done: Int, of total: Int) {
        guard visible, total > 0 else { return }
        let width = 30
        let filled = width * done / total
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[K\(label) \(bar) \(done)/\(total)".utf8))
    }

    func clear() {
        if visible { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
