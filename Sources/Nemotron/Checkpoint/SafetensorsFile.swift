import Foundation

/// One memory-mapped `.safetensors` file: an 8-byte little-endian header length, a JSON header
/// mapping tensor names to dtype, shape and byte offsets, then the raw data. Every entry's byte
/// range is checked against the file size when the file is opened.
public final class SafetensorsFile: @unchecked Sendable {
    public struct Entry: Sendable {
        public let name: String
        /// The dtype string as written; `elementType` is nil for types nemotron-run does not know.
        public let dtypeName: String
        public let shape: [Int]
        /// Offset of the first byte from the start of the mapping, and the byte count.
        public let offset: Int
        public let byteCount: Int
        public var elementType: ElementType? { ElementType(rawValue: dtypeName) }
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let entries: [String: Entry]
    public let fileSize: Int
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw NemotronError.fileMissing(path: path, what: "a safetensors file") }
            throw NemotronError.fileUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw NemotronError.fileUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        fileSize = Int(info.st_size)
        guard fileSize >= 8 else {
            throw NemotronError.badSafetensors(
                path: path, reason: "file is \(fileSize) bytes, shorter than the 8-byte header length (truncated?)")
        }
        guard let mapped = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw NemotronError.fileUnreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
        do {
            entries = try Self.parseHeader(UnsafeRawPointer(mapped), fileSize: fileSize, path: path)
        } catch {
            munmap(mapped, fileSize)
            throw error
        }
    }

    deinit {
        if let base { munmap(base, fileSize) }
    }

    public func pointer(_ entry: Entry) -> UnsafeRawPointer {
        UnsafeRawPointer(base!) + entry.offset
    }

    // MARK: - Header validation

    /// The header rules of the `safetensors` library (`read_metadata` and `Metadata::validate`):
    /// a header of at most 100,000,000 bytes that is a UTF-8 JSON object starting with `{`;
    /// every tensor named once, with a known dtype, a shape of non-negative integers and
    /// integer `data_offsets`; byte sizes that do not overflow and match dtype × shape; and
    /// byte ranges that, in offset order, start at 0, follow each other without gap or overlap
    /// and cover the data section exactly. Errors name the file and the tensor.
    static func parseHeader(_ base: UnsafeRawPointer, fileSize: Int, path: String) throws -> [String: Entry] {
        func bad(_ reason: String) -> NemotronError { .badSafetensors(path: path, reason: reason) }
        let declared = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(fileSize - 8) else {
            throw bad("header length \(declared) runs past the end of the file (\(fileSize) bytes; truncated?)")
        }
        let headerLength = Int(declared)
        guard headerLength <= maxHeaderBytes else {
            throw bad("header length \(headerLength) exceeds the limit of \(maxHeaderBytes) bytes")
        }
        let header = Data(bytes: base + 8, count: headerLength)
        guard header.first == UInt8(ascii: "{") else { throw bad("header does not start with '{'") }
        let object: Any
        do {
            object = try JSONParser.parse(header, path: path, rejectingDuplicateKeys: true)
        } catch let NemotronError.fileUnreadable(_, reason) {
            throw bad("header: \(reason)")
        }
        guard let dict = object as? [String: Any] else { throw bad("header is not a JSON object") }
        if let metadata = dict["__metadata__"], !(metadata is [String: String]) {
            throw bad("'__metadata__' is not an object of strings")
        }
        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart
        var entries: [String: Entry] = [:]
        for (name, value) in dict where name != "__metadata__" {
            let entry = try Self.entry(name, value, dataStart: dataStart, dataSize: dataSize, path: path)
            entries[name] = entry
        }
        // In offset order, each range starts where the one before ended; the last ends the file.
        var end = 0
        for entry in entries.values.sorted(by: { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }) {
            let begin = entry.offset - dataStart
            guard begin == end else {
                throw bad(
                    begin < end
                        ? "tensor '\(entry.name)' byte range [\(begin), \(begin + entry.byteCount)) overlaps the "
                            + "tensor before it, which ends at \(end)"
                        : "the data section has a gap: bytes [\(end), \(begin)) before tensor '\(entry.name)' "
                            + "belong to no tensor")
            }
            end = begin + entry.byteCount
        }
        guard end == dataSize else {
            throw bad(
                "the tensors cover \(end) bytes but the data section holds \(dataSize) (truncated, or extra data?)")
        }
        return entries
    }

    /// A JSON list as written, for messages.
    private static func list(_ values: [Any]) -> String {
        "[" + values.map(JSONObject.describe).joined(separator: ", ") + "]"
    }

    /// safetensors' largest accepted header (`MAX_HEADER_SIZE`).
    static let maxHeaderBytes = 100_000_000

    /// Bits per element of every dtype the `safetensors` format defines.
    static let dtypeBits: [String: Int] = [
        "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64,
        "F64": 64, "I64": 64, "U64": 64,
    ]

    /// One header entry, checked on its own: fields, dtype, shape, offsets and byte size.
    private static func entry(_ name: String, _ value: Any, dataStart: Int, dataSize: Int, path: String) throws
        -> Entry
    {
        func bad(_ reason: String) -> NemotronError {
            .badSafetensors(path: path, reason: "tensor '\(name)' \(reason)")
        }
        guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
            let shapeList = info["shape"] as? [Any],
            let offsetList = info["data_offsets"] as? [Any]
        else {
            throw bad(
                "lacks dtype, shape or data_offsets (expected {\"dtype\": string, \"shape\": [int], "
                    + "\"data_offsets\": [begin, end]})"
            )
        }
        guard let bits = dtypeBits[dtype] else {
            throw bad(
                "has dtype \(JSONObject.describe(dtype)); expected one of "
                    + dtypeBits.keys.sorted().joined(separator: ", ")
            )
        }
        let shape = shapeList.compactMap(JSONObject.exactInteger)
        guard shape.count == shapeList.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw bad("has shape \(Self.list(shapeList)); expected a list of non-negative integers")
        }
        let offsets = offsetList.compactMap(JSONObject.exactInteger)
        guard offsets.count == 2, offsetList.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
            throw bad(
                "has data_offsets \(Self.list(offsetList)); expected [begin, end], integers with "
                    + "0 <= begin <= end"
            )
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard end <= dataSize else {
            throw bad("byte range [\(begin), \(end)) lies outside the data section (\(dataSize) bytes)")
        }
        var elements = 1
        var overflow = false
        for size in shape where !overflow { (elements, overflow) = elements.multipliedReportingOverflow(by: size) }
        let (elementBits, bitsOverflow) = elements.multipliedReportingOverflow(by: bits)
        guard !overflow && !bitsOverflow else {
            throw bad("has shape \(shape) whose byte size overflows 64 bits")
        }
        guard elementBits % 8 == 0 else {
            throw bad("has shape \(shape) of \(dtype), \(elementBits) bits: not a whole number of bytes")
        }
        guard elementBits / 8 == end - begin else {
            throw bad("spans \(end - begin) bytes but shape \(shape) of \(dtype) needs \(elementBits / 8)")
        }
        return Entry(name: name, dtypeName: dtype, shape: shape, offset: dataStart + begin, byteCount: end - begin)
    }

}
