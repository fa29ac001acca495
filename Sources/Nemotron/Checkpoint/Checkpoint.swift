import Foundation

/// A Hugging Face checkpoint directory: `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`. Answers typed, shape-checked requests for whole tensors or
/// for the slices one tensor-parallel rank needs, without reading any other bytes.
public final class Checkpoint: @unchecked Sendable {
    public let directory: URL
    public let files: [SafetensorsFile]
    private let location: [String: (file: SafetensorsFile, entry: SafetensorsFile.Entry)]

    public init(directory: URL) throws {
        self.directory = directory
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
            for (name, fileName) in weightMap.sorted(by: { $0.key < $1.key }) {
                let file = try opened[fileName] ?? SafetensorsFile(path: directory.appendingPathComponent(fileName).path)
                if opened[fileName] == nil {
                    opened[fileName] = file
                    files.append(file)
                }
                guard let entry = file.entries[name] else {
                    throw NemotronError.tensorMissing(name: name, searched: "\(file.path), where \(index.path) says it is")
                }
                location[name] = (file, entry)
            }
        } else if FileManager.default.fileExists(atPath: single.path) {
            let file = try SafetensorsFile(path: single.path)
            files = [file]
            for (name, entry) in file.entries { location[name] = (file, entry) }
        } else {
            throw NemotronError.fileMissing(path: directory.path,
                what: "a checkpoint directory with model.safetensors or model.safetensors.index.json")
        }
        self.files = files
        self.location = location
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    public func entry(_ name: String) throws -> (file: SafetensorsFile, entry: SafetensorsFile.Entry) {
        guard let found = location[name] else {
            throw NemotronError.tensorMissing(name: name, searched: files.map(\.path).joined(separator: ", "))
        }
        return found
    }

    /// A weight of one of the accepted shapes (first = the canonical one, named in errors).
    func checkedWeight(_ name: String, shapes: [[Int]]) throws -> (file: SafetensorsFile, entry: SafetensorsFile.Entry, dtype: DType) {
        let (file, entry) = try entry(name)
        guard let dtype = entry.dtype, dtype.isWeightType else {
            throw NemotronError.tensorDType(name: name, path: file.path, dtype: entry.dtypeName, allowed: DType.weightTypes.map(\.rawValue))
        }
        guard shapes.contains(entry.shape) else {
            throw NemotronError.tensorShape(name: name, path: file.path, shape: entry.shape, expected: shapes[0])
        }
        return (file, entry, dtype)
    }

    // MARK: - Weights in their checkpoint dtype

    /// Matrix `[rows, cols]`, keeping only the listed row segments (concatenated in order) and
    /// the given column range. Zero-copy when the kept part is contiguous in the file.
    public func matrix(_ name: String, rows: Int, cols: Int, rowSegments: [Range<Int>]? = nil,
                       columns: Range<Int>? = nil) throws -> WeightMatrix {
        let (file, entry, dtype) = try checkedWeight(name, shapes: [[rows, cols]])
        let base = file.pointer(entry)
        let segments = Self.merged((rowSegments ?? [0..<rows]).filter { !$0.isEmpty })
        let columns = columns ?? 0..<cols
        let keptRows = segments.reduce(0) { $0 + $1.count }
        let isContiguous = columns == 0..<cols && segments.count <= 1
        if isContiguous {
            let first = segments.first?.lowerBound ?? 0
            return WeightMatrix(rows: keptRows, cols: cols, dtype: dtype, base: base + first * cols * dtype.byteSize, owner: nil)
        }
        let element = dtype.byteSize
        let owned = OwnedBytes(byteCount: keptRows * columns.count * element)
        var out = 0
        for segment in segments {
            for row in segment {
                let source = base + (row * cols + columns.lowerBound) * element
                (owned.pointer + out * columns.count * element).copyMemory(from: source, byteCount: columns.count * element)
                out += 1
            }
        }
        release(base, byteCount: entry.byteCount)
        return WeightMatrix(rows: keptRows, cols: columns.count, dtype: dtype, base: UnsafeRawPointer(owned.pointer), owner: owned)
    }

    /// Drops this process's mapping of a tensor whose slice was copied, so a rank's resident
    /// memory holds its own slices and not the pages it read them from (they fault back in if
    /// another view needs them).
    private func release(_ base: UnsafeRawPointer, byteCount: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) / page * page
        let end = (Int(bitPattern: base) + byteCount + page - 1) / page * page
        madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
    }

    /// Joins segments that follow each other (a single rank's [z | x | B | C | dt] is one run).
    private static func merged(_ segments: [Range<Int>]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for segment in segments {
            if let last = result.last, last.upperBound == segment.lowerBound {
                result[result.count - 1] = last.lowerBound..<segment.upperBound
            } else {
                result.append(segment)
            }
        }
        return result
    }

    // MARK: - Small tensors widened to f32

    /// A small tensor (norm weights, conv filters, per-head vectors) of one of the accepted
    /// shapes, widened to f32, keeping only the elements in `range` of its flattened form.
    public func floats(_ name: String, shapes: [[Int]], range: Range<Int>? = nil) throws -> [Float] {
        let (file, entry, dtype) = try checkedWeight(name, shapes: shapes)
        let all = entry.elementCount
        let range = range ?? 0..<all
        let matrix = WeightMatrix(rows: 1, cols: all, dtype: dtype, base: file.pointer(entry), owner: nil)
        var full = [Float](repeating: 0, count: all)
        full.withUnsafeMutableBufferPointer { matrix.row(0, into: $0.baseAddress!) }
        return Array(full[range])
    }

    public func vector(_ name: String, count: Int, range: Range<Int>? = nil) throws -> [Float] {
        try floats(name, shapes: [[count]], range: range)
    }

    // MARK: - Inventory

    /// Element and byte counts per dtype over every tensor in the checkpoint.
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
