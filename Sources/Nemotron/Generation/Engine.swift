import Foundation

/// A loaded model ready to run on this rank: the effective run settings, the model, its
/// workspace and generator. What every command builds first.
public final class Engine {
    public let settings: RunConfig
    public let model: NemotronH
    public let generator: Generator
    public let communicator: Communicator
    public let threads: Int

    public init(settings: RunConfig, communicator: Communicator) throws {
        guard let path = settings.model else {
            throw NemotronError.invalidArgument(name: "model", value: "(none)", expected: "a checkpoint directory: pass --model DIR or set 'model' in the config file")
        }
        self.settings = settings
        self.communicator = communicator
        threads = settings.threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / communicator.size)
        model = try NemotronH(directory: URL(fileURLWithPath: path), tpSize: communicator.size, rank: communicator.rank)
        generator = Generator(model: model, workspace: Workspace(threads: threads), communicator: communicator)
    }

    public var config: ModelConfig { model.config }
    public var stopIds: Set<Int> { Set(model.config.eosTokenIds) }

    /// The prompt from the settings, checked against the vocabulary.
    public func promptTokens() throws -> [Int] {
        let tokens = settings.tokens ?? []
        try generator.validate(tokens)
        return tokens
    }
}
