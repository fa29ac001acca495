import Foundation

/// A Hugging Face checkpoint directory: `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`. Answers typed, shape-checked requests for whole tensors or
/// for the slices one tensor-parallel rank needs, without reading any other bytes.
///
/// Tensors are asked for by their `WeightNames` name. Two mappings lead there from the names on
/// disk: a `prefix` (a wrapper's `language_model.`) is taken off, and tensors outside it are not
/// seen; and a name in `WeightNames.alternates` stands for its canonical one when that is absent.
/// Errors name the tensor as the file spells it.
public final class Checkpoint: @unchecked Sendable {
    public let directory: URL
    /// Files holding at least one tensor under the prefix.
    public let files: [SafetensorsFile]
    /// Prefix of the wanted tensors' names on disk ("" for a plain checkpoint).
    public let prefix: String
    /// How stored weights are quantized (config.json's `quantization_config`), nil for floats.
    public let quantization: QuantizationConfig?
    /// The format linear weights stored as floats are quantized into as they load (`quantize`).
    public let quantizeOnLoad: WeightFormat?
    private let location: [String: (file: SafetensorsFile, entry: SafetensorsFile.Entry)]

    public init(
        directory: URL, prefix: String = "", quantization: QuantizationConfig? = nil,
        quantizeOnLoad: WeightFormat? = nil
    ) throws {
        self.directory = directory
        self.prefix = prefix
        self.quantization = quantization
        self.quantizeOnLoad = quantizeOnLoad
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        let single = directory.appendingPathComponent("model.safetensors")
        var files: [SafetensorsFile] = []
        var location: [String: (SafetensorsFile, SafetensorsFile.Entry)] = [:]
        if FileManager.default.fileExists(atPath: index.path) {
            let json = try JSONObject(contentsOf: index)
            guard let weightMap = json.values["weight_map"] as? [String: String] else {
                throw NemotronError.configKeyMissing(path: index.path, key: "weight_map")
            }
            var opened: [String: SafetensorsFile] = [:]
            for (name, fileName) in weightMap.sorted(by: { $0.key < $1.key }) where name.hasPrefix(prefix) {
                let file =
                    try opened[fileName] ?? SafetensorsFile(path: directory.appendingPathComponent(fileName).path)
                if opened[fileName] == nil {
                    opened[fileName] = file
                    files.append(file)
                }
                guard let entry = file.entries[name] else {
                    throw NemotronError.tensorMissing(
                        name: name, searched: "\(file.path), where \(index.path) says it is")
                }
                location[String(name.dropFirst(prefix.count))] = (file, entry)
            }
        } else if FileManager.default.fileExists(atPath: single.path) {
            let file = try SafetensorsFile(path: single.path)
            files = [file]
            for (name, entry) in file.entries where name.hasPrefix(prefix) {
                location[String(name.dropFirst(prefix.count))] = (file, entry)
            }
        } else {
            throw NemotronError.fileMissing(
                path: directory.path,
                what: "a checkpoint directory with model.safetensors or model.safetensors.index.json")
        }
        for (canonical, alternates) in WeightNames.alternates where location[canonical] == nil {
            if let alternate = alternates.first(where: { location[$0] != nil }) {
                location[canonical] = location.removeValue(forKey: alternate)
            }
        }
        self.files = files
        self.location = location
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// Every tensor's name as asked for (prefix taken off, alternates mapped), sorted.
    public var names: [String] { location.keys.sorted() }

    /// Elements of a tensor, 0 when absent.
    public func elementCount(_ name: String) -> Int { location[name]?.entry.elementCount ?? 0 }

    public func entry(_ name: String) throws -> (file: SafetensorsFile, entry: SafetensorsFile.Entry) {
        guard let found = location[name] else {
            throw NemotronError.tensorMissing(
                name: prefix + name, searched: files.map(\.path).joined(separator: ", "))
        }
        return found
    }

    /// A weight of one of the accepted shapes (first = the canonical one, named in errors) in
    /// a plain format, viewed whole where the file maps it.
    func plainWeight(_ name: String, shapes: [[Int]]) throws -> (entry: SafetensorsFile.Entry, view: WeightMatrix) {
        let (file, entry) = try entry(name)
        guard let element = entry.elementType, let format = WeightFormat(element: element) else {
            throw NemotronError.tensorDType(
                name: entry.name, path: file.path, dtype: entry.dtypeName,
                allowed: WeightFormat.plainElements.map(\.rawValue))
        }
        guard shapes.contains(entry.shape) else {
            throw NemotronError.tensorShape(name: entry.name, path: file.path, shape: entry.shape, expected: shapes[0])
        }
        let cols = entry.shape.count > 1 ? entry.shape.dropFirst().reduce(1, *) : entry.elementCount
        let rows = entry.shape.count > 1 ? entry.shape[0] : 1
        return (entry, WeightMatrix(rows: rows, cols: cols, format: format, base: file.pointer(entry)))
    }

    // MARK: - Weights in their storage format

    /// Matrix `[rows, cols]`, keeping only the listed row segments (concatenated in order) and
    /// the given column range. Zero-copy when the kept part is contiguous in the file.
    public func matrix(
        _ name: String, rows: Int, cols: Int, rowSegments: [Range<Int>]? = nil,
        columns: Range<Int>? = nil
    ) throws -> WeightMatrix {
        let (entry, whole) = try plainWeight(name, shapes: [[rows, cols]])
        let kept = try whole.slice(
            rowSegments: rowSegments ?? [0..<rows], columns: columns ?? 0..<cols, name: entry.name)
        if kept.isCopy { release(whole.base, byteCount: entry.byteCount) }
        return kept
    }

    /// Drops this process's mapping of a tensor whose slice was copied, so a rank's resident
    /// memory holds its own slices and not the pages it read them from (they fault back in if
    /// another view needs them).
    func release(_ base: UnsafeRawPointer, byteCount: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) / page * page
        let end = (Int(bitPattern: base) + byteCount + page - 1) / page * page
        madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
    }

    // MARK: - Small tensors widened to f32

    /// A small tensor (norm weights, conv filters, per-head vectors) of one of the accepted
    /// shapes, widened to f32, keeping only the elements in `range` of its flattened form.
    public func floats(_ name: String, shapes: [[Int]], range: Range<Int>? = nil) throws -> [Float] {
        let (entry, view) = try plainWeight(name, shapes: shapes)
        let all = entry.elementCount
        let flat = WeightMatrix(rows: 1, cols: all, format: view.format, base: view.base)
        var full = [Float](repeating: 0, count: all)
        full.withUnsafeMutableBufferPointer { flat.row(0, into: $0.baseAddress!) }
        return Array(full[range ?? 0..<all])
    }

    public func vector(_ name: String, count: Int, range: Range<Int>? = nil) throws -> [Float] {
        try floats(name, shapes: [[count]], range: range)
    }

    // MARK: - Inventory

    /// Element and byte counts per dtype over every tensor under the prefix.
    public func inventory() -> [(dtype: String, elements: Int, bytes: Int)] {
        var totals: [String: (Int, Int)] = [:]
        for (_, (_, entry)) in location {
            let current = totals[entry.dtypeName, default: (0, 0)]
            totals[entry.dtypeName] = (current.0 + entry.elementCount, current.1 + entry.byteCount)
        }
        return totals.sorted { $0.key < $1.key }.map { ($0.key, $0.value.0, $0.value.1) }
    }

    public var fileBytes: Int { files.reduce(0) { $0 + $1.fileSize } }
}
