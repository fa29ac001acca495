import Foundation
import Testing

@testable import Nemotron

@Suite("Checkpoint loading and bad inputs")
struct CheckpointTests {
    /// Rewrites a safetensors file's JSON header, keeping its data section.
    func rewriteHeader(_ url: URL, _ change: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: url)
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try #require(
            try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + length)) as? [String: Any])
        change(&header)
        var json = try JSONSerialization.data(withJSONObject: header)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(data.subdata(in: 8 + length..<data.count))
        try out.write(to: url)
    }

    func loadError(_ directory: URL) -> String {
        do {
            _ = try NemotronH(directory: directory)
            return "no error"
        } catch { return "\(error)" }
    }

    var dense: Fixture { Fixture.all[0] }

    @Test("sharded checkpoints resolve every tensor through the index")
    func sharded() throws {
        let checkpoint = try Checkpoint(directory: Fixture.all[1].directory)
        #expect(checkpoint.files.count == 3)
        #expect(checkpoint.contains("lm_head.weight"))
    }

    @Test("bf16 weights stay bf16 and are borrowed from the mapping")
    func keepsDType() throws {
        let model = try Fixture.all[3].load()
        #expect(model.lmHead.format == .bf16)
        #expect(!model.lmHead.isCopy)
    }

    @Test("a directory without weights")
    func missingWeights() throws {
        let directory = try TemporaryDirectory()
        let message = "\(try #require(throws: NemotronError.self) { try Checkpoint(directory: directory.url) })"
        #expect(message.contains(directory.url.path) && message.contains("model.safetensors"))
    }

    @Test("a file shorter than the header length field")
    func truncatedBelowHeader() throws {
        let directory = try TemporaryDirectory()
        try Data([1, 2, 3]).write(to: directory.file("model.safetensors"))
        let message = "\(try #require(throws: NemotronError.self) { try Checkpoint(directory: directory.url) })"
        #expect(message.contains("model.safetensors") && message.contains("shorter than the 8-byte header length"))
    }

    @Test("a header length past the end of the file")
    func headerPastEnd() throws {
        let directory = try TemporaryDirectory()
        var data = Data()
        withUnsafeBytes(of: UInt64(4096).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data("{}".utf8))
        try data.write(to: directory.file("model.safetensors"))
        let message = "\(try #require(throws: NemotronError.self) { try Checkpoint(directory: directory.url) })"
        #expect(message.contains("header length 4096 runs past the end of the file (10 bytes"))
    }

    @Test("a truncated data section: tensor byte range outside the file")
    func truncatedData() throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(dense)
        let file = copy.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: file)
        try data.prefix(data.count / 2).write(to: file)
        let message = loadError(copy)
        #expect(message.contains(file.path) && message.contains("lies outside the data section"))
    }

    @Test("an unsupported dtype names the tensor and the supported ones")
    func unsupportedDType() throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(dense)
        try rewriteHeader(copy.appendingPathComponent("model.safetensors")) { header in
            var entry = header["backbone.norm_f.weight"] as! [String: Any]
            entry["dtype"] = "F64"
            entry["shape"] = [32]
            header["backbone.norm_f.weight"] = entry
        }
        #expect(loadError(copy).hasSuffix("tensor 'backbone.norm_f.weight' has dtype F64; supported: F32, BF16, F16"))
    }

    @Test("a missing tensor is named")
    func missingTensor() throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(dense)
        // Renamed, so that the data section stays covered (a dropped entry would leave a gap).
        try rewriteHeader(copy.appendingPathComponent("model.safetensors")) {
            $0["backbone.layers.3.mixer.q_proj.weight_renamed"] = $0.removeValue(
                forKey: "backbone.layers.3.mixer.q_proj.weight")
        }
        #expect(loadError(copy).hasPrefix("tensor 'backbone.layers.3.mixer.q_proj.weight' is missing"))
    }

    @Test("a wrong shape names the tensor and the expected shape")
    func wrongShape() throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(dense)
        try rewriteHeader(copy.appendingPathComponent("model.safetensors")) { header in
            var entry = header["backbone.layers.3.mixer.q_proj.weight"] as! [String: Any]
            entry["shape"] = [64, 128]
            header["backbone.layers.3.mixer.q_proj.weight"] = entry
        }
        #expect(
            loadError(copy).hasSuffix(
                "tensor 'backbone.layers.3.mixer.q_proj.weight' has shape [64, 128]; expected [128, 64] from "
                    + "config.json"
            ))
    }

    @Test("a byte count that does not match dtype and shape")
    func byteCountMismatch() throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(dense)
        try rewriteHeader(copy.appendingPathComponent("model.safetensors")) { header in
            var entry = header["backbone.norm_f.weight"] as! [String: Any]
            entry["shape"] = [65]
            header["backbone.norm_f.weight"] = entry
        }
        #expect(
            loadError(copy).contains("tensor 'backbone.norm_f.weight' spans 256 bytes but shape [65] of F32 needs 260"))
    }

    @Test("an index that points at a file without the tensor")
    func indexMismatch() throws {
        let directory = try TemporaryDirectory()
        let copy = try directory.copy(Fixture.all[1])
        let index = copy.appendingPathComponent("model.safetensors.index.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: index)) as? [String: Any])
        var map = try #require(json["weight_map"] as? [String: String])
        map["backbone.extra.weight"] = "model-00001-of-00003.safetensors"
        json["weight_map"] = map
        try JSONSerialization.data(withJSONObject: json).write(to: index)
        #expect(loadError(copy).contains("tensor 'backbone.extra.weight' is missing"))
    }
}
