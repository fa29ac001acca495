/// The text of one request's generated tokens as they arrive: deltas that never split a UTF-8
/// character, and stop strings found in time linear in the text's length. Only the tail that
/// could still begin a stop string (its longest length − 1 characters) is held back and
/// searched again, together with the new text.
struct TextStream {
    private var decoder: StreamingDecoder
    private let stops: [String]
    /// Characters kept back: the longest stop string's length − 1.
    private let keep: Int
    /// Text not yet emitted (at most `keep` characters between calls).
    private var held = ""
    /// Everything emitted so far.
    private(set) var text = ""
    private(set) var stopped = false

    init(tokenizer: Tokenizer, stops: [String]) {
        decoder = StreamingDecoder(tokenizer: tokenizer)
        self.stops = stops.filter { !$0.isEmpty }
        keep = (self.stops.map(\.count).max() ?? 1) - 1
    }

    /// The text that token `id` releases; sets `stopped` when a stop string appeared (the text
    /// before it is released, the stop string and anything after it never are).
    mutating func append(_ id: Int) -> String {
        precondition(!stopped, "token after a stop string")
        held += decoder.append(id)
        if let stop = stops.compactMap({ held.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            stopped = true
            return emit(String(held[..<stop.lowerBound]), keeping: "")
        }
        guard held.count > keep else { return "" }
        let cut = held.index(held.endIndex, offsetBy: -keep)
        return emit(String(held[..<cut]), keeping: String(held[cut...]))
    }

    /// The held-back rest at the end of a request that did not stop on a string.
    mutating func finish() -> String {
        guard !stopped else { return "" }
        return emit(held + decoder.finish(), keeping: "")
    }

    private mutating func emit(_ released: String, keeping rest: String) -> String {
        held = rest
        text += released
        return released
    }
}
