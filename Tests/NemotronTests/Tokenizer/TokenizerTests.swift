import Foundation
import Testing
@testable import Nemotron

/// Parity with Hugging Face `tokenizers` on tokenizers trained by
/// scripts/make-tokenizer-fixtures.py (360 strings each: prose, code, digits, whitespace runs,
/// accents, CJK, emoji, special tokens inside text).
@Suite("Tokenizer parity with Hugging Face tokenizers")
struct TokenizerTests {
    struct Case {
        let text: String
        let ids: [Int]
        let decoded: String
    }

    static let names = ["llama3-style", "gpt2-style"]

    static func directory(_ name: String) -> URL { Fixture.root.appendingPathComponent("tokenizers").appendingPathComponent(name) }

    static func cases(_ name: String) throws -> [Case] {
        let text = try String(contentsOf: directory(name).appendingPathComponent("cases.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return Case(text: try #require(object["text"] as? String), ids: try #require(object["ids"] as? [Int]),
                        decoded: try #require(object["decoded"] as? String))
        }
    }

    @Test("identical ids and decoded text on every case", arguments: names)
    func parity(name: String) throws {
        let tokenizer = try Tokenizer(directory: Self.directory(name))
        let cases = try Self.cases(name)
        #expect(cases.count >= 300)
        var mismatches = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids { mismatches += 1 }
            #expect(ids == c.ids, "\(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids) == c.decoded)
        }
        #expect(mismatches == 0)
    }

    @Test("decode(encode(s)) == s", arguments: names)
    func roundTrip(name: String) throws {
        let tokenizer = try Tokenizer(directory: Self.directory(name))
        for c in try Self.cases(name) { #expect(tokenizer.decode(tokenizer.encode(c.text)) == c.text) }
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
                #expect(!piece.contains("\u{FFFD}"))
                streamed += piece
            }
            streamed += decoder.finish()
            #expect(streamed == c.decoded)
        }
        // The corpus has emoji and CJK whose bytes are spread over several tokens.
        #expect(splitCharacters > 0)
    }

    @Test("special tokens in text are matched whole; BOS comes from tokenizer_config.json")
    func specialTokens() throws {
        let tokenizer = try Tokenizer(directory: Self.directory("llama3-style"))
        let eot = try #require(tokenizer.id(of: "<|eot_id|>"))
        let ids = tokenizer.encode("hi<|eot_id|>there")
        #expect(ids.contains(eot) && tokenizer.specialIds.contains(eot))
        #expect(tokenizer.encodePrompt("hi").first == tokenizer.bosId && tokenizer.bosId != nil)
        #expect(tokenizer.eosIds == [eot])
        let gpt2 = try Tokenizer(directory: Self.directory("gpt2-style"))
        #expect(gpt2.encodePrompt("hi") == gpt2.encode("hi"))
    }

    @Test("unsupported tokenizer features are named")
    func unsupported() throws {
        let directory = try TemporaryDirectory()
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.directory("gpt2-style").appendingPathComponent("tokenizer.json"))) as? [String: Any])
        json["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"]
        try JSONSerialization.data(withJSONObject: json).write(to: directory.file("tokenizer.json"))
        let error = "\(try #require(throws: NemotronError.self) { try Tokenizer(directory: directory.url) })"
        #expect(error.contains("pre_tokenizer.type") && error.contains("Metaspace"))
        var model = try #require(json["model"] as? [String: Any])
        model["type"] = "WordPiece"
        json["model"] = model
        try JSONSerialization.data(withJSONObject: json).write(to: directory.file("tokenizer.json"))
        #expect("\(try #require(throws: NemotronError.self) { try Tokenizer(directory: directory.url) })".contains("model.type"))
    }
}
