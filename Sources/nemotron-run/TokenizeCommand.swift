import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Encode one JSON string per line into one JSON array of token ids per line (no special tokens added).")

        @Option(name: .long, help: "Directory with tokenizer.json (and tokenizer_config.json).")
        var model: String

        @Option(name: .long, help: "Input file: one JSON string per line.")
        var jsonl: String

        func run() throws {
            let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: model))
            try JSONLines.map(jsonl, expecting: "a JSON string") { line in (line as? String).map(tokenizer.encode) }
        }
    }

    struct Detokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode one JSON array of token ids per line into one JSON string per line (special tokens kept)."
        )

        @Option(name: .long, help: "Directory with tokenizer.json.")
        var model: String

        @Option(name: .long, help: "Input file: one JSON array of token ids per line.")
        var jsonl: String

        func run() throws {
            let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: model))
            try JSONLines.map(jsonl, expecting: "a JSON array of integers") { line in
                guard let items = line as? [Any], let ids = items.map({ ($0 as? NSNumber)?.intValue }) as? [Int] else {
                    return nil
                }
                return tokenizer.decode(ids)
            }
        }
    }
}

/// One JSON value per line.
enum JSONLines {
    /// Reads `path`, maps each line's value with `transform` (nil: the line is not `expected`)
    /// and prints the results as JSON, one per line, on rank 0.
    static func map(_ path: String, expecting expected: String, _ transform: (Any) -> Any?) throws {
        var out = ""
        for (number, line) in try read(path).enumerated() {
            guard let result = transform(line) else {
                throw NemotronError.invalidArgument(
                    name: "\(path) line \(number + 1)", value: "\(line)", expected: expected)
            }
            out += encode(result) + "\n"
        }
        if MPICommunicator.world.isRoot { FileHandle.standardOutput.write(Data(out.utf8)) }
    }

    static func read(_ path: String) throws -> [Any] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw NemotronError.fileMissing(path: path, what: "a JSON-lines file")
        }
        return try text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).enumerated().map {
            number, line in
            // JSONSerialization drops a U+FEFF that opens a string or follows an escape; JSONDecoder keeps it.
            if let string = try? JSONDecoder().decode(String.self, from: Data(line)) { return string }
            if let object = try? JSONDecoder().decode(TextObject.self, from: Data(line)) { return object }
            guard let value = try? JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed]) else {
                throw NemotronError.invalidArgument(
                    name: "\(path) line \(number + 1)", value: String(decoding: line.prefix(80), as: UTF8.self),
                    expected: "valid JSON")
            }
            return value
        }
    }

    /// An object with a "text" string (as in the tokenizer fixtures' cases.jsonl).
    struct TextObject: Decodable {
        let text: String
    }

    static func encode(_ value: Any) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes]))
            ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension NemotronRun {
    struct BenchTokenizer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-tokenizer",
            abstract: "Measure encode and decode speed (MB/s of UTF-8 text, one thread).")

        @Option(name: .long, help: "Directory with tokenizer.json.")
        var model: String

        @Option(name: .long, help: "Corpus: one JSON string, or object with a \"text\" string, per line.")
        var jsonl: String

        @Option(name: .long, help: "Passes over the corpus (the best is reported).")
        var repeats = 5

        func run() throws {
            let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: model))
            let texts = try JSONLines.read(jsonl).compactMap { $0 as? String ?? ($0 as? JSONLines.TextObject)?.text }
            // A cold tokenizer per pass: its piece cache must not carry over between passes.
            let corpus = Array(
                repeating: texts, count: max(1, 4_000_000 / max(1, texts.reduce(0) { $0 + $1.utf8.count }))
            ).flatMap { $0 }
            let bytes = corpus.reduce(0) { $0 + $1.utf8.count }
            var encodeBest = 0.0
            var decodeBest = 0.0
            var tokens = 0
            for _ in 0..<repeats {
                let fresh = try Tokenizer(directory: URL(fileURLWithPath: model))
                var start = Date()
                let ids = corpus.map { fresh.encode($0) }
                encodeBest = max(encodeBest, Double(bytes) / Date().timeIntervalSince(start) / 1e6)
                tokens = ids.reduce(0) { $0 + $1.count }
                start = Date()
                let decoded = ids.map { tokenizer.decode($0) }
                decodeBest = max(decodeBest, Double(bytes) / Date().timeIntervalSince(start) / 1e6)
                precondition(decoded.count == corpus.count)
            }
            say(
                String(
                    format:
                        "bench-tokenizer: %d strings, %.2f MB, %d tokens; encode %.1f MB/s, decode %.1f MB/s (best "
                        + "of %d, one thread)",
                    corpus.count, Double(bytes) / 1e6, tokens, encodeBest, decodeBest, repeats))
        }
    }
}
