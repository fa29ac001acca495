import Foundation

/// The server's counters, gauges and histograms, written in the Prometheus text format
/// (`GET /metrics`). Not thread-safe by itself: `ServerBridge` holds it under its lock.
struct Metrics {
    /// Cumulative histogram with fixed upper bounds (seconds).
    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(_ bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            count += 1
        }

        func lines(_ name: String, help: String) -> [String] {
            var out = ["# HELP \(name) \(help)", "# TYPE \(name) histogram"]
            for (bound, n) in zip(bounds, counts) { out.append("\(name)_bucket{le=\"\(Metrics.format(bound))\"} \(n)") }
            out.append("\(name)_bucket{le=\"+Inf\"} \(count)")
            out.append("\(name)_sum \(Metrics.format(sum))")
            out.append("\(name)_count \(count)")
            return out
        }
    }

    var received = 0
    var finished: [String: Int] = [:]
    var rejected: [String: Int] = [:]
    var promptTokens = 0
    var generationTokens = 0
    var steps = 0
    var queueDepth = 0
    var running = 0
    var batchSize = 0
    var stepTokens = 0
    var timeToFirstToken = Histogram([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
    var interTokenLatency = Histogram([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10])
    var requestDuration = Histogram([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300])

    func text() -> String {
        func counter(_ name: String, _ help: String, _ value: Int) -> [String] {
            ["# HELP \(name) \(help)", "# TYPE \(name) counter", "\(name) \(value)"]
        }
        func gauge(_ name: String, _ help: String, _ value: Int) -> [String] {
            ["# HELP \(name) \(help)", "# TYPE \(name) gauge", "\(name) \(value)"]
        }
        func labelled(_ name: String, _ help: String, _ label: String, _ values: [String: Int], _ keys: [String])
            -> [String]
        {
            ["# HELP \(name) \(help)", "# TYPE \(name) counter"]
                + Set(keys + values.keys).sorted().map { "\(name){\(label)=\"\($0)\"} \(values[$0] ?? 0)" }
        }
        var lines: [String] = []
        lines += counter("nemotron_requests_received_total", "Requests accepted into the queue.", received)
        lines += labelled(
            "nemotron_requests_finished_total", "Requests finished, by finish reason.", "finish_reason", finished,
            ["stop", "length", "cancelled"])
        lines += labelled(
            "nemotron_requests_rejected_total", "Requests refused, by reason.", "reason", rejected,
            ["bad_request", "queue_full", "shutting_down"])
        lines += counter("nemotron_prompt_tokens_total", "Prompt tokens of accepted requests.", promptTokens)
        lines += counter("nemotron_generation_tokens_total", "Tokens generated.", generationTokens)
        lines += counter("nemotron_steps_total", "Scheduler steps run.", steps)
        lines += gauge("nemotron_queue_depth", "Requests accepted and waiting for a place in a batch.", queueDepth)
        lines += gauge("nemotron_running_requests", "Requests in the running batches.", running)
        lines += gauge("nemotron_batch_size", "Sequences in rank 0's latest forward pass.", batchSize)
        lines += gauge("nemotron_step_tokens", "Tokens in rank 0's latest forward pass.", stepTokens)
        lines += timeToFirstToken.lines(
            "nemotron_time_to_first_token_seconds", help: "From a request's arrival to its first token.")
        lines += interTokenLatency.lines(
            "nemotron_inter_token_latency_seconds", help: "Between consecutive tokens of one request.")
        lines += requestDuration.lines(
            "nemotron_request_duration_seconds", help: "From a request's arrival to its end.")
        return lines.joined(separator: "\n") + "\n"
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }
}
