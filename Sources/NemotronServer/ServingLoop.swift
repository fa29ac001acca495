import Foundation
import Nemotron

/// The serving loop. It runs on the main thread of every rank, the only thread that calls MPI
/// (MPI is initialised FUNNELED). One iteration is one step:
///
/// 1. rank 0 composes the control message from what the HTTP threads queued (blocking up to
///    `idleWait` for a command when nothing runs, so an idle server does not spin) and
///    broadcasts it (`Communicator.broadcast(bytes:)`; the other ranks wait in it, sleeping);
/// 2. every rank applies it: cancellations, then admissions, in message order, so scheduler ids
///    and batches agree on every rank;
/// 3. every rank runs one scheduler step (tensor parallel: the same batch everywhere, rank 0
///    decides tokens; attention data parallel: each rank its own requests);
/// 4. under attention data parallelism every rank's events are gathered to rank 0
///    (`Scheduler.gatherEvents`), which hands them to the requests' handlers.
///
/// Under attention data parallelism rank 0 sends each new request to the rank with the fewest
/// requests in flight (lowest rank on ties); it knows every rank's load from the events it gathers.
public final class ServingLoop {
    let scheduler: Scheduler
    let world: Communicator
    /// Rank 0 only.
    let bridge: ServerBridge?
    /// How long rank 0 waits for a command when no request is in flight.
    static let idleWait = 1.0

    // Rank 0's books: scheduler id ↔ server key, and where each request runs.
    private var keyOf: [Int: Int] = [:]
    private var idOf: [Int: Int] = [:]
    private var rankOf: [Int: Int] = [:]
    private var load: [Int]
    private var step = 0

    init(scheduler: Scheduler, world: Communicator, bridge: ServerBridge?) {
        self.scheduler = scheduler
        self.world = world
        self.bridge = bridge
        load = Array(repeating: 0, count: scheduler.model.parallelism.splitsRequests ? world.size : 1)
    }

    /// Runs until rank 0 broadcasts shutdown (after `ServerBridge.beginShutdown`): every request
    /// still in flight is cancelled in that last message, and every rank returns.
    public func run() {
        while true {
            let outgoing = world.isRoot ? compose() : ControlMessage()
            let message = ControlMessage(decoding: world.broadcast(bytes: outgoing.encode(), root: 0))
            precondition(message.step == step, "control message for step \(message.step) at step \(step)")
            var events = message.cancels.compactMap { scheduler.cancel($0) }
            for admit in message.admits {
                // Rank 0 checked the prompt and stop strings before admitting, so every rank accepts.
                guard let id = try? scheduler.submit(admit.request, rank: admit.rank), id == admit.id else {
                    preconditionFailure("rank \(world.rank) could not admit request \(admit.id) as rank 0 did")
                }
            }
            if !message.shutdown { events += scheduler.step() ?? [] }
            for case .finished(let id, _) in events { scheduler.release(id) }
            let gathered = scheduler.gatherEvents(events)
            if world.isRoot { deliver(gathered) }
            step += 1
            if message.shutdown { break }
        }
        bridge?.failAll(.unavailable("the server is shutting down", code: "shutting_down"))
    }

    /// Rank 0: the next control message from the queued commands.
    private func compose() -> ControlMessage {
        guard let bridge else { return ControlMessage(step: step) }
        let busy = load.contains { $0 > 0 }
        let commands = bridge.take(waitingUpTo: busy ? 0 : Self.idleWait)
        var message = ControlMessage(step: step)
        let cancelled = Set(commands.cancels)
        if commands.shutdown {
            message.shutdown = true
            message.cancels = keyOf.keys.sorted()
            for submission in commands.admits {
                bridge.deliver(
                    submission.key, .failed(.unavailable("the server is shutting down", code: "shutting_down")))
            }
            return message
        }
        message.cancels = commands.cancels.compactMap { idOf[$0] }
        var next = scheduler.nextID
        for submission in commands.admits {
            if cancelled.contains(submission.key) {
                var generation = Generation(promptTokens: submission.request.prompt.count)
                generation.finishReason = .cancelled
                bridge.deliver(submission.key, .finished(generation))
                continue
            }
            let rank = load.indices.min { load[$0] < load[$1] }!
            load[rank] += 1
            message.admits.append(.init(id: next, rank: rank, request: submission.request))
            keyOf[next] = submission.key
            idOf[submission.key] = next
            rankOf[next] = rank
            next += 1
        }
        return message
    }

    /// Rank 0: hands every rank's events of this step to the requests' handlers.
    private func deliver(_ events: [GenerationEvent]) {
        guard let bridge else { return }
        for event in events {
            switch event {
            case .token(let id, let token, let text):
                if let key = keyOf[id] { bridge.deliver(key, .token(id: token, text: text)) }
            case .finished(let id, let generation):
                scheduler.release(id)
                guard let key = keyOf.removeValue(forKey: id) else { continue }
                idOf[key] = nil
                if let rank = rankOf.removeValue(forKey: id) { load[rank] -= 1 }
                bridge.deliver(key, .finished(generation))
            }
        }
        // Under attention DP rank 0 sees only its own batch; the others' is estimated from their loads.
        let running =
            scheduler.model.parallelism.splitsRequests
            ? load.reduce(0) { $0 + (scheduler.maxBatchSize > 0 ? min($1, scheduler.maxBatchSize) : $1) }
            : scheduler.runningCount
        bridge.recordStep(running: running, batch: scheduler.lastPass.rows, tokens: scheduler.lastPass.tokens)
    }
}
