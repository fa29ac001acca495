import Nemotron

/// What rank 0 tells every rank before each serving step, broadcast in a fixed little-endian
/// binary layout so that every rank applies the same cancellations and admissions in the same
/// order and runs the same step:
///
///     step i64 | shutdown i64 (0 or 1)
///     | cancels i64 | cancels × scheduler id i64
///     | admits i64 | per admit:
///         scheduler id i64 | serving rank i64 | max new tokens i64 | ignore EOS i64 (0 or 1)
///         | temperature f64 | top k i64 | top p f64 | seed i64 (the UInt64's bits)
///         | prompt tokens i64 | tokens × id i64
///         | stop strings i64 | per stop string: bytes i64 | UTF-8
///
/// Cancellations apply before admissions; on shutdown every rank leaves its loop after applying
/// them. Decoding checks every count against the bytes left; a malformed message is a bug in this
/// file, so it stops the process with the offset.
struct ControlMessage: Equatable {
    var step = 0
    var shutdown = false
    var cancels: [Int] = []
    var admits: [Admission] = []

    /// One request joining the scheduler: its id (the same on every rank), the rank that serves
    /// it under attention data parallelism, and the request itself.
    struct Admission: Equatable {
        var id: Int
        var rank: Int
        var request: Nemotron.Request

        static func == (a: Admission, b: Admission) -> Bool {
            a.id == b.id && a.rank == b.rank && a.request.prompt == b.request.prompt
                && a.request.maxNewTokens == b.request.maxNewTokens && a.request.sampling == b.request.sampling
                && a.request.stop == b.request.stop && a.request.ignoreEOS == b.request.ignoreEOS
        }
    }

    var isEmpty: Bool { !shutdown && cancels.isEmpty && admits.isEmpty }

    func encode() -> [UInt8] {
        var out = ByteWriter()
        out.int(step)
        out.int(shutdown ? 1 : 0)
        out.int(cancels.count)
        cancels.forEach { out.int($0) }
        out.int(admits.count)
        for admit in admits {
            let r = admit.request
            out.int(admit.id)
            out.int(admit.rank)
            out.int(r.maxNewTokens)
            out.int(r.ignoreEOS ? 1 : 0)
            out.double(Double(r.sampling.temperature))
            out.int(r.sampling.topK)
            out.double(Double(r.sampling.topP))
            out.int(Int(bitPattern: UInt(r.sampling.seed)))
            out.int(r.prompt.count)
            r.prompt.forEach { out.int($0) }
            out.int(r.stop.count)
            for stop in r.stop {
                out.int(stop.utf8.count)
                out.bytes += stop.utf8
            }
        }
        return out.bytes
    }

    init(step: Int = 0, shutdown: Bool = false, cancels: [Int] = [], admits: [Admission] = []) {
        self.step = step
        self.shutdown = shutdown
        self.cancels = cancels
        self.admits = admits
    }

    init(decoding bytes: [UInt8]) {
        var input = ByteReader(bytes: bytes, what: "control message")
        step = input.int()
        shutdown = input.count(below: 2) == 1
        cancels = (0..<input.count(below: input.remaining / 8 + 1)).map { _ in input.int() }
        admits = (0..<input.count(below: input.remaining / 8 + 1)).map { _ in
            let id = input.int()
            let rank = input.int()
            let maxNewTokens = input.int()
            let ignoreEOS = input.count(below: 2) == 1
            let temperature = Float(input.double())
            let topK = input.int()
            let topP = Float(input.double())
            let seed = UInt64(UInt(bitPattern: input.int()))
            let prompt = (0..<input.count(below: input.remaining / 8 + 1)).map { _ in input.int() }
            let stop = (0..<input.count(below: input.remaining / 8 + 1)).map { _ in
                String(decoding: input.take(input.count(below: input.remaining + 1)), as: UTF8.self)
            }
            let request = Nemotron.Request(
                prompt: prompt, maxNewTokens: maxNewTokens,
                sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed),
                stop: stop, ignoreEOS: ignoreEOS)
            return Admission(id: id, rank: rank, request: request)
        }
        input.expectEnd()
    }
}

/// Little-endian 64-bit fields.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func int(_ value: Int) {
        withUnsafeBytes(of: Int64(value).littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func double(_ value: Double) {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads what `ByteWriter` wrote; any count that overruns the bytes stops the process.
struct ByteReader {
    let bytes: [UInt8]
    let what: String
    var offset = 0
    var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int) -> ArraySlice<UInt8> {
        precondition(
            count >= 0 && count <= remaining, "\(what): \(count) bytes wanted at offset \(offset), \(remaining) left")
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func word() -> UInt64 { take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) } }
    mutating func int() -> Int { Int(Int64(bitPattern: word())) }
    mutating func double() -> Double { Double(bitPattern: word()) }

    /// A count in `0..<limit`.
    mutating func count(below limit: Int) -> Int {
        let value = int()
        precondition(
            value >= 0 && value < limit, "\(what): count \(value) at offset \(offset - 8) outside 0..<\(limit)")
        return value
    }

    func expectEnd() {
        precondition(remaining == 0, "\(what): \(remaining) bytes left over at offset \(offset)")
    }
}
