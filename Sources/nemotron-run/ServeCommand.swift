import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI
import NemotronServer

extension NemotronRun {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Serve the model over an OpenAI-compatible HTTP API (rank 0 listens; every rank runs the batches).",
            discussion: RunConfig.flagHelp)

        @OptionGroup var options: ModelOptions

        func run() throws {
            let engine = try loadEngine(try options.settings)
            try Server.run(engine: engine) { Report.note($0) }
        }
    }
}
