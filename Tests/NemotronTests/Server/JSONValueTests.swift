import Foundation
import Testing

@testable import NemotronServer

/// The server's JSON writer against Foundation's parser (the naive twin): every string the
/// tokenizer can produce must come back unchanged, members in the order written.
@Suite("JSONValue")
struct JSONValueTests {
    @Test("compact text, members in the order written")
    func layout() {
        let value: JSONValue = [
            "id": "cmpl-7", "created": 17, "choices": [["index": 0, "logprobs": nil, "ok": true]],
            "ids": JSONValue([1, -2]), "empty": [:], "none": [],
        ]
        let expected =
            #"{"id":"cmpl-7","created":17,"choices":[{"index":0,"logprobs":null,"ok":true}],"#
            + #""ids":[1,-2],"empty":{},"none":[]}"#
        #expect(value.text == expected)
        #expect(JSONValue(nil as String?).text == "null")
    }

    @Test("strings: quotes, backslashes, every control character, non-ASCII and slashes round-trip")
    func strings() throws {
        let controls = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar(UInt8($0)) }))
        let samples = [
            "", "plain", "a \"quoted\" \\ path/to/x", controls, "tab\tnew\nline\r", "é ✓ 中文 🙂 \u{7F} \u{2028}",
            String(repeating: "ab\u{1}", count: 100),
        ]
        for sample in samples {
            let text = JSONValue.array([.string(sample)]).text
            let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String]
            #expect(parsed == [sample], "\(text)")
        }
        #expect(JSONValue.string("\u{1}\u{1F}\"\\/").text == #""\u0001\u001f\"\\/""#)
    }
}
