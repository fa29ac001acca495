import Foundation
import Testing

@testable import Nemotron

/// Parity with Hugging Face `tokenizers` on tokenizers trained by
/// scripts/make-tokenizer-fixtures.py (690-740 strings each: prose, code, digits, whitespace
/// runs, newlines, accents, combining marks, RTL, CJK, emoji, contractions, U+FEFF, special
/// tokens inside text, whole vocabulary tokens).
@Suite("Tokenizer parity with Hugging Face tokenizers")
struct TokenizerTests {
    /// One line of cases.jsonl: `tokenizers`' encode(text, add_special_tokens=False / True) and
    /// decode(ids, skip_special_tokens=False) of each.
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let decoded: String
        let ids_special: [Int]
        let decoded_special: String
    }

    static let names = ["llama3-style", "gpt2-style", "tekken-style", "llama3-ignore-merges"]

    static func directory(_ name: String) -> URL {
        Fixture.root.appendingPathComponent("tokenizers").appendingPathComponent(name)
    }

    /// JSON lines, decoded with JSONDecoder: JSONSerialization drops a U+FEFF that opens a string.
    static func lines<T: Decodable>(_ url: URL, as type: T.Type) throws -> [T] {
        try Data(contentsOf: url).split(separator: UInt8(ascii: "\n")).map {
            try JSONDecoder().decode(T.self, from: Data($0))
        }
    }

    static func cases(_ name: String) throws -> [Case] {
        try lines(directory(name).appendingPathComponent("cases.jsonl"), as: Case.self)
    }

    @Test("identical ids and decoded text on every case, with and without special tokens", arguments: names)
    func parity(name: String) throws {
        let tokenizer = try Tokenizer(directory: Self.directory(name))
        let cases = try Self.cases(name)
        #expect(cases.count >= 600)
        var mismatches = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            let special = tokenizer.encode(c.text, addSpecialTokens: true)
            if ids != c.ids || special != c.ids_special { mismatches += 1 }
            #expect(ids == c.ids, "\(c.text.debugDescription)")
            #expect(special == c.ids_special, "\(c.text.debugDescription)")
            #expect(tokenizer.encodePrompt(c.text) == c.ids_special)
            #expect(tokenizer.decode(c.ids) == c.decoded)
            #expect(tokenizer.decode(c.ids_special) == c.decoded_special)
        }
        #expect(mismatches == 0)
    }

    @Test("decode(encode(s)) == s", arguments: names)
    func roundTrip(name: String) throws {
        let tokenizer = try Tokenizer(directory: Self.directory(name))
        for c in try Self.cases(name) { #expect(tokenizer.decode(tokenizer.encode(c.text)) == c.text) }
    }

    @Test("a second pass, served from the piece cache, gives the same ids", arguments: names)
    func cachedPass(name: String) throws {
        let tokenizer = try Tokenizer(directory: Self.directory(name))
        let cases = try Self.cases(name)
        let first = cases.map { tokenizer.encode($0.text) }
        #expect(cases.map { tokenizer.encode($0.text) } == first)
    }

    @Test("streamed text equals the final text, never printing half a character", arguments: names)
    func streaming(name: String) throws {
        let tokenizer = try Tokenizer(directory: Self.directory(name))
        var splitCharacters = 0
        for c in try Self.cases(name) {
            var decoder = StreamingDecoder(tokenizer: tokenizer)
            var streamed = ""
            for id in c.ids {
                let piece = decoder.append(id)
                if piece.isEmpty && !tokenizer.bytes([id]).isEmpty { splitCharacters += 1 }
                #expect(!piece.contains("\u{FFFD}") || c.decoded.contains("\u{FFFD}"))
                streamed += piece
            }
            streamed += decoder.finish()
            #expect(streamed == c.decoded)
        }
        // The corpus has emoji and CJK whose bytes are spread over several tokens.
        #expect(splitCharacters > 0)
    }

    /// One line of split-cases.jsonl: the pieces `tokenizers`' Split(pattern, "isolated") gives.
    struct SplitCase: Decodable {
        let text: String
        let gpt2: [String]
        let llama3: [String]
        let tekken: [String]
    }

    @Test("the hand-written scanners split exactly like the regexes in tokenizers")
    func scanners() throws {
        let cases = try Self.lines(
            Fixture.root.appendingPathComponent("tokenizers/split-cases.jsonl"), as: SplitCase.self)
        #expect(cases.count >= 2000)
        let patterns: [(String, KeyPath<SplitCase, [String]>)] = [
            (SplitPattern.gpt2Source, \.gpt2), (SplitPattern.llama3Source, \.llama3),
            (SplitPattern.tekkenSource, \.tekken),
        ]
        for (source, expected) in patterns {
            let pattern = try SplitPattern(source: source)
            if case .regex = pattern { Issue.record("\(source) has no scanner") }
            for c in cases {
                let bytes = Array(c.text.utf8)
                let pieces = pattern.split(bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
                #expect(pieces == c[keyPath: expected], "\(source.prefix(20)) \(c.text.debugDescription)")
            }
        }
    }

    @Test("the NSRegularExpression fallback splits the same cases alike")
    func regexFallback() throws {
        let cases = try Self.lines(
            Fixture.root.appendingPathComponent("tokenizers/split-cases.jsonl"), as: SplitCase.self)
        let patterns: [(String, KeyPath<SplitCase, [String]>)] = [
            (SplitPattern.gpt2Source, \.gpt2), (SplitPattern.llama3Source, \.llama3),
            (SplitPattern.tekkenSource, \.tekken),
        ]
        for (source, expected) in patterns {
            let pattern = SplitPattern.regex(try NSRegularExpression(pattern: source))
            for c in cases {
                let bytes = Array(c.text.utf8)
                let pieces = pattern.split(bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
                #expect(pieces == c[keyPath: expected], "\(source.prefix(20)) \(c.text.debugDescription)")
            }
        }
    }

    @Test("special tokens are matched whole; add_special_tokens follows the post-processor, not add_bos_token")
    func specialTokens() throws {
        let llama3 = try Tokenizer(directory: Self.directory("llama3-style"))
        let eot = try #require(llama3.id(of: "<|eot_id|>"))
        #expect(llama3.encode("hi<|eot_id|>there").contains(eot) && llama3.specialIds.contains(eot))
        #expect(llama3.eosIds == [eot])
        // add_bos_token is true, but there is no post-processor: transformers 5 adds nothing.
        #expect(llama3.encodePrompt("hi") == llama3.encode("hi") && llama3.bosId != nil)

        let tekken = try Tokenizer(directory: Self.directory("tekken-style"))
        #expect(tekken.bosId == 1 && tekken.eosIds == [2])
        #expect(tekken.encodePrompt("hi") == [1] + tekken.encode("hi"))
        #expect(tekken.encode("<SPECIAL_11>User\n").first == tekken.id(of: "<SPECIAL_11>"))
        #expect(tekken.encode("<SPECIAL_1000>").count > 1, "not a token of this vocabulary")

        // Llama 3's Sequence[ByteLevel, TemplateProcessing].
        let sequence = try Tokenizer(directory: Self.directory("llama3-ignore-merges"))
        #expect(sequence.encode("hi", addSpecialTokens: true) == [try #require(sequence.bosId)] + sequence.encode("hi"))
    }

    @Test("ignore_merges: a piece that is a vocabulary token is that token, even where no merges build it")
    func ignoreMerges() throws {
        let tokenizer = try Tokenizer(directory: Self.directory("llama3-ignore-merges"))
        for (text, token) in [(" hello", "Ġhello"), (" Zürich", "ĠZÃ¼rich"), ("...", "..."), ("   ", "ĠĠĠ")] {
            #expect(tokenizer.encode(text) == [try #require(tokenizer.id(of: token))], "\(text)")
        }
    }

    @Test("a leading U+FEFF is text like any other")
    func byteOrderMark() throws {
        let tokenizer = try Tokenizer(directory: Self.directory("tekken-style"))
        let ids = tokenizer.encode("\u{FEFF}Hello")
        #expect(tokenizer.bytes(ids).starts(with: [0xEF, 0xBB, 0xBF]) && tokenizer.decode(ids) == "\u{FEFF}Hello")
    }

    /// Writes the gpt2-style tokenizer.json with `change` applied, and returns the load error.
    func loadError(_ change: (inout [String: Any]) -> Void) throws -> String {
        let directory = try TemporaryDirectory()
        let source = Self.directory("gpt2-style").appendingPathComponent("tokenizer.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as? [String: Any])
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: directory.file("tokenizer.json"))
        return "\(try #require(throws: NemotronError.self) { try Tokenizer(directory: directory.url) })"
    }

    @Test("unsupported tokenizer parts are named with the file")
    func unsupported() throws {
        func model(_ json: inout [String: Any], _ key: String, _ value: Any) {
            var model = json["model"] as! [String: Any]
            model[key] = value
            json["model"] = model
        }
        let cases: [(part: String, value: String, change: (inout [String: Any]) -> Void)] = [
            ("pre_tokenizer.type", "Metaspace", { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }),
            (
                "pre_tokenizer", "no ByteLevel",
                {
                    $0["pre_tokenizer"] = [
                        "type": "Split", "pattern": ["Regex": "\\s+"], "behavior": "Isolated", "invert": false,
                    ]
                }
            ),
            ("normalizer.type", "Lowercase", { $0["normalizer"] = ["type": "Lowercase"] }),
            (
                "normalizer.type", "Sequence",
                { $0["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFC"]]] }
            ),
            ("model.type", "WordPiece", { model(&$0, "type", "WordPiece") }),
            ("model.type", "Unigram", { model(&$0, "type", "Unigram") }),
            (
                "model.byte_fallback", "true",
                {
                    var model = $0["model"] as! [String: Any]
                    var vocab = model["vocab"] as! [String: Any]
                    vocab["Ā"] = nil
                    model["vocab"] = vocab
                    model["byte_fallback"] = true
                    $0["model"] = model
                }
            ),
            (
                "post_processor.type", "RobertaProcessing",
                {
                    $0["post_processor"] = ["type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]]
                }
            ),
            ("decoder.type", "Metaspace", { $0["decoder"] = ["type": "Metaspace", "replacement": "▁"] }),
        ]
        for c in cases {
            let error = try loadError(c.change)
            #expect(error.contains("tokenizer.json") && error.contains(c.part) && error.contains(c.value), "\(error)")
        }
    }

    @Test("a merge whose parts or concatenation are not in the vocabulary is named with the missing token")
    func invalidMerge() throws {
        for (merge, missing) in [("Ġ zzz", "zzz"), ("zz Ġ", "zz"), ("Q Q", "QQ")] {
            let error = try loadError { json in
                var model = json["model"] as! [String: Any]
                var merges = model["merges"] as! [Any]
                merges.insert(merges.first is String ? merge : merge.split(separator: " ").map(String.init), at: 1)
                model["merges"] = merges
                json["model"] = model
            }
            #expect(
                error.contains("tokenizer.json") && error.contains("model.merges[1]")
                    && error.contains("(\"\(missing)\" is not)"), "\(error)")
        }
    }
}

extension ProcessSuites {
    @Suite("Tokenizer commands", .serialized)
    struct TokenizerCommandTests {
        @Test("tokenize --jsonl keeps a U+FEFF that opens a string or follows an escape")
        func byteOrderMarkInJSONLines() throws {
            let directory = try TemporaryDirectory()
            let model = TokenizerTests.directory("tekken-style")
            let texts = ["\u{FEFF}Hello", "a\n\u{FEFF}b", "\u{FEFF}", "plain"]
            let input = directory.file("in.jsonl")
            // Written raw (not as \ufeff escapes), as Python's json.dumps(ensure_ascii=False) does.
            try texts.map { "\"" + $0.replacingOccurrences(of: "\n", with: "\\n") + "\"" }.joined(separator: "\n")
                .write(to: input, atomically: false, encoding: .utf8)
            let output = try CLI.run(["tokenize", "--model", model.path, "--jsonl", input.path])
            #expect(output.status == 0, "\(output.stderr)")
            let ids = try output.stdout.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [Int])
            }
            let tokenizer = try Tokenizer(directory: model)
            #expect(ids == texts.map(tokenizer.encode))
        }
    }
}
