import Foundation
import Testing

@testable import Nemotron

/// Builders of damaged inputs for the reliability tests: raw safetensors files, checkpoint
/// copies with one file changed, weights overwritten in place.
enum DamagedFiles {
    /// A safetensors file of exactly this header text (padded with spaces to 8 bytes, as the
    /// writers do) and `dataBytes` zero bytes of data.
    static func safetensors(header: String, dataBytes: Int, in directory: URL, name: String = "model.safetensors")
        throws -> URL
    {
        var json = Data(header.utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        data.append(Data(count: dataBytes))
        let url = directory.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    /// The message `SafetensorsFile` gives for a header, or "no error".
    static func headerError(_ header: String, dataBytes: Int) throws -> String {
        let directory = try TemporaryDirectory()
        let url = try safetensors(header: header, dataBytes: dataBytes, in: directory.url)
        do {
            _ = try SafetensorsFile(path: url.path)
            return "no error"
        } catch { return "\(error)" }
    }

    /// A checkpoint directory whose files are links to `source`'s, except those `replacing`
    /// names, which are written (cheaper than copying the weights).
    static func checkpoint(linking source: URL, in directory: URL, replacing files: [String: Data] = [:]) throws
        -> URL
    {
        let target = directory.appendingPathComponent("checkpoint-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) where files[name] == nil {
            try FileManager.default.createSymbolicLink(
                at: target.appendingPathComponent(name), withDestinationURL: source.appendingPathComponent(name))
        }
        for (name, data) in files { try data.write(to: target.appendingPathComponent(name)) }
        return target
    }

    /// A JSON file of `source` with `change` applied to its top-level object.
    static func json(_ url: URL, _ change: (inout [String: Any]) -> Void) throws -> Data {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&object)
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// Overwrites element `index` of an F32 tensor in a (copied) safetensors file.
    static func setFloat(_ value: Float, at index: Int, of tensor: String, in url: URL) throws {
        let offset = try #require(try SafetensorsFile(path: url.path).entries[tensor]).offset + index * 4
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        withUnsafeBytes(of: value.bitPattern.littleEndian) { handle.write(Data($0)) }
    }
}
