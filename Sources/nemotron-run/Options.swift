import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

/// What every model command takes: `--config FILE.yaml` and the settings flags, one per key of
/// `RunConfig.keys` (listed in each command's help). The effective settings are the defaults,
/// then the file, then the flags, checked in `validate()`.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "YAML run config; flags override its keys.")
    var config: String?

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settingsFlags: [String] = []

    /// Flag and file errors surface here, before the command runs.
    func validate() throws {
        _ = try resolved()
    }

    /// The effective settings.
    var settings: RunConfig { get throws { try resolved() } }

    /// The settings with `extraPrompts` (a prompt file's) joining the flags' prompts.
    func resolved(extraPrompts: [Prompt] = []) throws -> RunConfig {
        var settings = RunConfig()
        if let config { try settings.apply(file: config) }
        try settings.apply(flags: settingsFlags, extraPrompts: extraPrompts)
        return settings
    }
}

/// Loads the engine on every rank after selecting the reduction strategy (both collective).
func loadEngine(_ settings: RunConfig) throws -> Engine {
    let world = MPICommunicator.world
    try world.agreeing { try world.use(settings.allReduceStrategy) }
    let bar = ProgressBar(label: "loading \(URL(fileURLWithPath: settings.model).lastPathComponent)")
    let engine = try Engine.load(settings: settings, world: world) { bar.update($0, of: $1) }
    bar.clear()
    Report.note("nemotron-run: \(engine.parallelismDescription)")
    if let note = engine.placementNote { Report.note("nemotron-run: \(note)") }
    if engine.config.quantization != nil || engine.settings.quantize != .none {
        Report.note("nemotron-run: weights \(engine.weightsDescription)")
    }
    return engine
}
