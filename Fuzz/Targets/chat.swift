// libFuzzer target: the Jinja chat-template renderer. The input is the template, optionally
// followed by a NUL byte and a JSON conversation; without one, a fixed conversation is rendered.
import Foundation

@testable import Nemotron

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0) ?? size
    guard
        let template = try? ChatTemplate(
            source: String(decoding: bytes[..<cut], as: UTF8.self),
            specialTokens: ["bos_token": "<s>", "eos_token": "</s>"])
    else { return 0 }
    // Built per input: a global's lazily made values read as leaks to LeakSanitizer.
    var messages: [JinjaValue] = [
        .dict([("role", "system"), ("content", "Be brief.")]),
        .dict([("role", "user"), ("content", "Hi <b>there</b> {{ x }}")]),
        .dict([("role", "assistant"), ("content", "<think>hm</think>Hello!")]),
        .dict([("role", "user"), ("content", "2 + 2?")]),
    ]
    if cut < size,
        let parsed = try? ChatTemplate.messages(
            fromJSON: String(decoding: bytes[(cut + 1)...], as: UTF8.self), source: "fuzz")
    {
        messages = parsed
    }
    for generation in [false, true] {
        _ = try? template.render(
            messages: messages, addGenerationPrompt: generation, kwargs: ["enable_thinking": .bool(generation)])
    }
    return 0
}
