import Foundation
import Testing

@testable import Nemotron

/// A committed reference checkpoint made by scripts/make-reference.py with transformers'
/// NemotronHForCausalLM, and the outputs transformers produced for it.
struct Fixture: CustomStringConvertible, Sendable {
    let name: String
    /// Max |Δ| allowed against transformers: fp32 checkpoints 1e-4; bf16 weights 2e-3
    /// (the reference ran in fp32 on the same bf16-rounded weights).
    let tolerance: Float

    static let all = [
        Fixture(name: "dense", tolerance: 1e-4), Fixture(name: "moe", tolerance: 1e-4),
        Fixture(name: "latent-moe", tolerance: 1e-4), Fixture(name: "dense-bf16", tolerance: 2e-3),
    ]
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    var description: String { name }
    var directory: URL { Self.root.appendingPathComponent(name) }
    var reference: Reference {
        get throws { try Reference(url: directory.appendingPathComponent("reference.safetensors")) }
    }

    /// This rank's model of a `tpSize`-way split. Its collectives are placeholders until it
    /// joins a group (`NemotronH.joining`).
    func load(tpSize: Int = 1, rank: Int = 0) throws -> NemotronH {
        let world: Communicator = tpSize == 1 ? SingleProcess() : Placeholder(rank: rank, size: tpSize)
        return try NemotronH(directory: directory, parallelism: Parallelism(world: world))
    }
}

/// reference.safetensors: prompt_ids, prefill_logits [T, V], greedy_ids [N], step_logits [N, V], experts.<layer> [T,
/// k].
struct Reference {
    let file: SafetensorsFile

    init(url: URL) throws { file = try SafetensorsFile(path: url.path) }

    func floats(_ name: String) throws -> [Float] {
        let entry = try #require(file.entries[name])
        let pointer = file.pointer(entry).assumingMemoryBound(to: Float.self)
        return Array(UnsafeBufferPointer(start: pointer, count: entry.elementCount))
    }

    func ints(_ name: String) throws -> [Int] {
        let entry = try #require(file.entries[name])
        return (0..<entry.elementCount).map {
            Int(file.pointer(entry).loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))
        }
    }

    func shape(_ name: String) throws -> [Int] { try #require(file.entries[name]).shape }

    var expertLayers: [Int] {
        file.entries.keys.compactMap { $0.hasPrefix("experts.") ? Int($0.dropFirst("experts.".count)) : nil }.sorted()
    }
}

/// Largest absolute difference between two equally long arrays.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// A temporary directory removed when the value is released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("nemotron-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Copies a fixture checkpoint here so a test can damage it.
    func copy(_ fixture: Fixture) throws -> URL {
        let target = url.appendingPathComponent(fixture.name)
        try FileManager.default.copyItem(at: fixture.directory, to: target)
        return target
    }
}
