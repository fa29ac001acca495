// libFuzzer target: the YAML run config (`RunConfig.apply(yaml:)`). After a NUL byte, the rest
// is command-line flags separated by newlines, applied on top (`apply(flags:)`).
import Foundation

@testable import Nemotron

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0) ?? size
    var config = RunConfig()
    guard (try? config.apply(yaml: String(decoding: bytes[..<cut], as: UTF8.self), path: "/fuzz/run.yaml")) != nil
    else { return 0 }
    if cut < size {
        let flags = String(decoding: bytes[(cut + 1)...], as: UTF8.self).split(separator: "\n").map(String.init)
        _ = try? config.apply(flags: flags)
    }
    _ = (config.described, config.allPrompts, config.sampling)
    return 0
}
