// libFuzzer target: a safetensors file's header (`SafetensorsFile.parseHeader`), as the file's
// bytes. Every entry it accepts must lie inside the file.
import Foundation

@testable import Nemotron

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 8 else { return 0 }
    guard let entries = try? SafetensorsFile.parseHeader(UnsafeRawPointer(data), fileSize: size, path: "fuzz") else {
        return 0
    }
    for entry in entries.values {
        precondition(entry.offset >= 8 && entry.offset + entry.byteCount <= size, "\(entry.name) outside the file")
        precondition(entry.shape.allSatisfy { $0 >= 0 } && entry.elementCount >= 0)
    }
    return 0
}
