import Foundation

/// Finished generations in a fixed little-endian binary layout, for crossing ranks (attention
/// data parallelism gathers each rank's results on rank 0). Per record:
///
///     request i64 | finish reason i64 (index in FinishReason.allCases) | prompt tokens i64
///     | n i64 | ids n × i64 | prefill seconds f64 | decode seconds f64 | timed decode steps i64
///     | text bytes i64 (−1: no text) | UTF-8 text | logits rows i64 | row width i64 | rows × width f32
///
/// Decoding checks every count against the bytes left; a malformed buffer is a bug in this
/// file, so it stops the process with the offset instead of dropping records.
enum GenerationRecord {
    static func encode(_ records: [(request: Int, generation: Generation)]) -> [UInt8] {
        var out = Writer()
        for (request, g) in records {
            out.int(request)
            out.int(FinishReason.allCases.firstIndex(of: g.finishReason)!)
            out.int(g.promptTokens)
            out.int(g.ids.count)
            g.ids.forEach { out.int($0) }
            out.double(g.prefillSeconds)
            out.double(g.decodeSeconds)
            out.int(g.timedDecodeSteps)
            if let text = g.text {
                out.int(text.utf8.count)
                out.bytes.append(contentsOf: text.utf8)
            } else {
                out.int(-1)
            }
            out.int(g.stepLogits.count)
            out.int(g.stepLogits.first?.count ?? 0)
            for row in g.stepLogits { row.forEach { out.float($0) } }
        }
        return out.bytes
    }

    static func decode(_ bytes: [UInt8]) -> [(request: Int, generation: Generation)] {
        var input = Reader(bytes: bytes)
        var records: [(Int, Generation)] = []
        while !input.atEnd { records.append(record(&input)) }
        return records
    }

    /// Scheduler events (a server's rank 0 streams the other ranks' requests from them). Per event:
    ///
    ///     kind i64 (0: token, 1: finished)
    ///     token:    request i64 | id i64 | text bytes i64 | UTF-8 text
    ///     finished: one generation record as above
    static func encode(events: [GenerationEvent]) -> [UInt8] {
        var out = Writer()
        for event in events {
            switch event {
            case .token(let request, let id, let text):
                out.int(0)
                out.int(request)
                out.int(id)
                out.int(text.utf8.count)
                out.bytes.append(contentsOf: text.utf8)
            case .finished(let request, let generation):
                out.int(1)
                out.bytes += encode([(request, generation)])
            }
        }
        return out.bytes
    }

    static func decode(events bytes: [UInt8]) -> [GenerationEvent] {
        var input = Reader(bytes: bytes)
        var events: [GenerationEvent] = []
        while !input.atEnd {
            if input.count(below: 2) == 0 {
                let request = input.int()
                let id = input.int()
                let text = String(decoding: input.take(input.count(below: input.remaining + 1)), as: UTF8.self)
                events.append(.token(request: request, id: id, text: text))
            } else {
                let (request, generation) = record(&input)
                events.append(.finished(request: request, generation))
            }
        }
        return events
    }

    private static func record(_ input: inout Reader) -> (request: Int, generation: Generation) {
        let request = input.int()
        let reason = FinishReason.allCases[input.count(below: FinishReason.allCases.count)]
        var g = Generation(promptTokens: input.int())
        g.finishReason = reason
        g.ids = (0..<input.count(below: input.remaining / 8 + 1)).map { _ in input.int() }
        g.prefillSeconds = input.double()
        g.decodeSeconds = input.double()
        g.timedDecodeSteps = input.int()
        let textBytes = input.int()
        if textBytes >= 0 { g.text = String(decoding: input.take(textBytes), as: UTF8.self) }
        let rows = input.count(below: input.remaining / 4 + 1)
        let width = input.count(below: input.remaining / 4 + 1)
        g.stepLogits = (0..<rows).map { _ in (0..<width).map { _ in input.float() } }
        return (request, g)
    }

    private struct Writer {
        var bytes: [UInt8] = []
        mutating func int(_ value: Int) {
            withUnsafeBytes(of: Int64(value).littleEndian) { bytes.append(contentsOf: $0) }
        }
        mutating func double(_ value: Double) {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        mutating func float(_ value: Float) {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var atEnd: Bool { offset == bytes.count }
        var remaining: Int { bytes.count - offset }

        mutating func take(_ count: Int) -> ArraySlice<UInt8> {
            precondition(
                count >= 0 && count <= remaining,
                "generation record: \(count) bytes wanted at offset \(offset), \(remaining) left")
            defer { offset += count }
            return bytes[offset..<offset + count]
        }

        mutating func word() -> UInt64 { take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        mutating func int() -> Int { Int(Int64(bitPattern: word())) }
        mutating func double() -> Double { Double(bitPattern: word()) }
        mutating func float() -> Float { Float(bitPattern: take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }) }

        /// A count in `0..<limit`.
        mutating func count(below limit: Int) -> Int {
            let value = int()
            precondition(
                value >= 0 && value < limit,
                "generation record: count \(value) at offset \(offset - 8) outside 0..<\(limit)")
            return value
        }
    }
}
