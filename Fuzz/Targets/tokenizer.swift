// libFuzzer target: tokenizer.json loading, then encoding and decoding. The input is the JSON,
// optionally followed by a NUL byte and the text to encode.
import Foundation

@testable import Nemotron

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0) ?? size
    guard let json = try? JSONParser.parse(Data(bytes[..<cut]), path: "tokenizer.json") as? [String: Any],
        let tokenizer = try? Tokenizer(json: JSONObject(values: json, path: "tokenizer.json"), config: nil)
    else { return 0 }
    let text =
        cut < size
        ? String(decoding: bytes[(cut + 1)...], as: UTF8.self) : "Hello, world! 123 héllo  日本語 <s> \u{FEFF}x\n\n"
    let ids = tokenizer.encode(text, addSpecialTokens: true)
    _ = tokenizer.decode(ids)
    var stream = TextStream(tokenizer: tokenizer, stops: ["\n\n"])
    for id in ids where !stream.stopped { _ = stream.append(id) }
    _ = stream.finish()
    return 0
}
