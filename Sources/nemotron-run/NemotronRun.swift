import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

struct NemotronRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nemotron-run",
        abstract: "Nemotron-H inference on CPUs, one process or many under mpirun.",
        subcommands: [
            Generate.self, Serve.self, Logits.self, Perplexity.self, Bench.self, BenchAllReduce.self, Inspect.self,
            Quantize.self, Tokenize.self, Detokenize.self, BenchTokenizer.self,
        ],
        defaultSubcommand: Generate.self)

    /// Parses and runs on every rank. Only rank 0 prints; every rank exits non-zero on error.
    static func launch() {
        let world = MPICommunicator.world
        var code: Int32 = 0
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as NemotronError {
            if world.isRoot { FileHandle.standardError.write(Data("error: \(error)\n".utf8)) }
            code = 1
        } catch {
            // Help goes to stdout; every other message (a bad flag, or a NemotronError thrown
            // while the options were validated) is one "error:" line on stderr.
            let isHelp = exitCode(for: error) == .success
            if world.isRoot {
                let text = isHelp ? fullMessage(for: error) : "error: \(message(for: error))"
                (isHelp ? FileHandle.standardOutput : FileHandle.standardError).write(Data((text + "\n").utf8))
            }
            code = isHelp ? 0 : max(1, exitCode(for: error).rawValue)
        }
        world.finalize()
        Foundation.exit(code)
    }
}

/// Prints on rank 0 only.
func say(_ text: String) {
    guard MPICommunicator.world.isRoot else { return }
    print(text)
    fflush(nil)
}
