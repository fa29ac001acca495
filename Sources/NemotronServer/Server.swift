import Dispatch
import Foundation
import Hummingbird
import Logging
import Nemotron
import ServiceLifecycle

/// `nemotron-run serve`: every rank builds a scheduler and runs the serving loop on its main
/// thread; rank 0 also runs the HTTP server on Hummingbird's threads and owns the bridge
/// between the two. SIGTERM and SIGINT are ignored by every rank but rank 0, which stops
/// accepting requests, cancels those in flight, broadcasts shutdown and lets every rank return.
public enum Server {
    /// Serves until a signal reaches rank 0. `announce` gets rank 0's one line with the address.
    public static func run(engine: Engine, announce: (String) -> Void) throws {
        let settings = engine.settings
        let world = engine.world
        let scheduler = engine.makeScheduler(ignoreEOS: settings.ignoreEOS)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        var http: HTTPService?
        var bridge: ServerBridge?
        try world.agreeing {
            guard world.isRoot else { return }
            let ranks = engine.parallelism.splitsRequests ? world.size : 1
            let created = ServerBridge(capacity: settings.maxBatchSize * ranks + settings.maxQueue)
            let directory = URL(fileURLWithPath: settings.model)
            let template = Result<ChatTemplate, any Error> { try ChatTemplate.load(directory: directory) }
            let name = settings.servedModelName.isEmpty ? directory.lastPathComponent : settings.servedModelName
            let parser = RequestParser(
                modelName: name, tokenizer: engine.tokenizer, template: template, vocabSize: engine.config.vocabSize,
                maxModelLen: settings.maxModelLen, defaults: settings)
            let server = OpenAIServer(bridge: created, parser: parser, maxRequestBytes: settings.maxRequestBytes)
            let service = HTTPService(server: server, host: settings.host, port: settings.port)
            let port = try service.start()
            announce(
                "nemotron-run: serving \(name) on http://\(settings.host):\(port) (max_batch_size "
                    + "\(settings.maxBatchSize), max_num_tokens \(settings.maxNumTokens), "
                    + "max_queue \(settings.maxQueue))")
            http = service
            bridge = created
        }
        var signals: [DispatchSourceSignal] = []
        if let bridge {
            for number in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { bridge.beginShutdown() }
                source.resume()
                signals.append(source)
            }
        }
        ServingLoop(scheduler: scheduler, world: world, bridge: bridge).run()
        http?.stop(within: 5)
        signals.forEach { $0.cancel() }
    }
}

/// The Hummingbird application in its own service group, started and stopped from the main
/// thread, which does not wait on Swift concurrency otherwise.
final class HTTPService: @unchecked Sendable {
    private let server: OpenAIServer
    private let host: String
    private let port: Int
    private var group: ServiceGroup?
    private let lock = NSLock()
    private var bound: Result<Int, Error>?
    private let ready = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)

    init(server: OpenAIServer, host: String, port: Int) {
        self.server = server
        self.host = host
        self.port = port
    }

    /// Binds and starts serving; returns the port (the chosen one when asked for port 0).
    func start() throws -> Int {
        var logger = Logger(label: "nemotron-run")
        logger.logLevel = .warning
        let app = Application(
            router: server.router(),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "nemotron-run"),
            onServerRunning: { [self] channel in
                settle(.success(channel.localAddress?.port ?? port))
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        self.group = group
        Task.detached { [self] in
            do {
                try await group.run()
                settle(.failure(ServerError.stoppedEarly))
            } catch {
                settle(.failure(error))
            }
            stopped.signal()
        }
        guard ready.wait(timeout: .now() + 60) == .success else { throw ServerError.bindTimeout(host, port) }
        lock.lock()
        defer { lock.unlock() }
        switch bound! {
        case .success(let port): return port
        case .failure(let error):
            throw NemotronError.invalidArgument(
                name: "serve", value: "\(host):\(port)", expected: "an address to listen on (\(error))")
        }
    }

    private func settle(_ result: Result<Int, Error>) {
        lock.lock()
        defer { lock.unlock() }
        guard bound == nil else { return }
        bound = result
        ready.signal()
    }

    /// Graceful shutdown: no new connections, open ones finish; gives up after `seconds`.
    func stop(within seconds: Double) {
        guard let group else { return }
        Task.detached { await group.triggerGracefulShutdown() }
        _ = stopped.wait(timeout: .now() + seconds)
    }

    enum ServerError: Error, CustomStringConvertible {
        case stoppedEarly
        case bindTimeout(String, Int)

        var description: String {
            switch self {
            case .stoppedEarly: return "the HTTP server stopped before it was running"
            case .bindTimeout(let host, let port): return "no HTTP server on \(host):\(port) after 60 s"
            }
        }
    }
}
