import Foundation
import Nemotron

/// Where the HTTP threads and the serving loop (rank 0's main thread, the only one that calls
/// MPI) meet: a lock-protected inbox of commands that the loop takes once per step, blocking
/// with a timeout when idle, and one event stream per request that the loop feeds. It bounds
/// the requests in flight (running batches plus `max_queue`; more are refused with 503) and
/// keeps the metrics.
final class ServerBridge: @unchecked Sendable {
    /// What a request's handler hears.
    enum Event: Sendable {
        case token(id: Int, text: String)
        case finished(Generation)
        case failed(APIError)
    }

    struct Submission {
        let key: Int
        let request: Nemotron.Request
    }

    /// What the loop takes each step: new requests, cancellations (by key), and whether to shut down.
    struct Commands {
        var admits: [Submission] = []
        var cancels: [Int] = []
        var shutdown = false
    }

    private struct Flight {
        let continuation: AsyncStream<Event>.Continuation
        let arrived: UInt64
        var lastToken: UInt64?
        var running = false
    }

    private let condition = NSCondition()
    private var inbox = Commands()
    private var flights: [Int: Flight] = [:]
    private var nextKey = 0
    private var draining = false
    private var metrics = Metrics()
    /// Requests in flight at most: the running batches plus the queue.
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    // MARK: - HTTP side

    /// Queues a request; its events arrive on the returned stream, which ends after `finished`
    /// or `failed`. Refused with 503 when the server is full or shutting down.
    func submit(_ request: Nemotron.Request) throws(APIError) -> (key: Int, events: AsyncStream<Event>) {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        condition.lock()
        defer { condition.unlock() }
        if draining {
            metrics.rejected["shutting_down", default: 0] += 1
            throw .unavailable("the server is shutting down", code: "shutting_down")
        }
        guard flights.count < capacity else {
            metrics.rejected["queue_full", default: 0] += 1
            throw .unavailable(
                "the server is at capacity (\(capacity) requests in flight); retry later", code: "queue_full")
        }
        let key = nextKey
        nextKey += 1
        flights[key] = Flight(continuation: continuation, arrived: Self.now())
        metrics.received += 1
        metrics.promptTokens += request.prompt.count
        inbox.admits.append(Submission(key: key, request: request))
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(key) }
        }
        condition.signal()
        return (key, stream)
    }

    /// Asks the loop to end a request (its client went away); nothing if it already ended.
    func cancel(_ key: Int) {
        condition.lock()
        defer { condition.unlock() }
        guard flights[key] != nil, !inbox.cancels.contains(key) else { return }
        inbox.cancels.append(key)
        condition.signal()
    }

    func rejectBadRequest() {
        condition.lock()
        metrics.rejected["bad_request", default: 0] += 1
        condition.unlock()
    }

    var isDraining: Bool {
        condition.lock()
        defer { condition.unlock() }
        return draining
    }

    var metricsText: String {
        condition.lock()
        defer { condition.unlock() }
        return metrics.text()
    }

    // MARK: - Loop side

    /// Stops accepting requests; the loop's next `take` says shut down (signal handlers call this).
    func beginShutdown() {
        condition.lock()
        draining = true
        inbox.shutdown = true
        condition.signal()
        condition.unlock()
    }

    /// The commands queued since the last call, waiting up to `seconds` for one when there are none.
    func take(waitingUpTo seconds: Double) -> Commands {
        condition.lock()
        defer { condition.unlock() }
        if seconds > 0 && inbox.admits.isEmpty && inbox.cancels.isEmpty && !inbox.shutdown {
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        }
        let taken = inbox
        inbox = Commands(shutdown: inbox.shutdown)
        return taken
    }

    /// Hands one event to a request's handler, timing its tokens; `finished` and `failed` end it.
    func deliver(_ key: Int, _ event: Event) {
        condition.lock()
        defer { condition.unlock() }
        guard var flight = flights[key] else { return }
        let now = Self.now()
        switch event {
        case .token:
            metrics.generationTokens += 1
            if let last = flight.lastToken {
                metrics.interTokenLatency.observe(Double(now - last) / 1e9)
            } else {
                metrics.timeToFirstToken.observe(Double(now - flight.arrived) / 1e9)
            }
            flight.lastToken = now
            flights[key] = flight
            flight.continuation.yield(event)
        case .finished(let generation):
            let reason = generation.finishReason == .eos ? "stop" : generation.finishReason.rawValue
            metrics.finished[reason, default: 0] += 1
            metrics.requestDuration.observe(Double(now - flight.arrived) / 1e9)
            end(key, flight, with: event)
        case .failed:
            end(key, flight, with: event)
        }
    }

    private func end(_ key: Int, _ flight: Flight, with event: Event) {
        flights[key] = nil
        inbox.cancels.removeAll { $0 == key }
        flight.continuation.yield(event)
        flight.continuation.finish()
    }

    /// Ends every request still in flight with `error` (at shutdown, after the loop's last step).
    func failAll(_ error: APIError) {
        condition.lock()
        defer { condition.unlock() }
        for (key, flight) in flights { end(key, flight, with: .failed(error)) }
        inbox = Commands(shutdown: true)
    }

    /// The loop's view after a step: requests running in batches, and rank 0's latest pass
    /// (sequences and tokens).
    func recordStep(running: Int, batch: Int, tokens: Int) {
        condition.lock()
        defer { condition.unlock() }
        metrics.steps += 1
        metrics.running = running
        metrics.batchSize = batch
        metrics.stepTokens = tokens
        metrics.queueDepth = max(0, flights.count - running)
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
