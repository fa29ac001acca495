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

    private static func parseHeader(_ base: UnsafeRawPointer, fileSize: Int, path: String) throws -> [String: Entry] {
        let headerLength = Int(clamping: UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)))
        guard headerLength <= fileSize - 8 else {
            throw NemotronError.badSafetensors(
                path: path,
                reason: "header length \(headerLength) runs past the end of the file (\(fileSize) bytes; truncated?)")
        }
        let header = Data(bytes: base + 8, count: headerLength)
        guard let object = try? JSONSerialization.jsonObject(with: header), let dict = object as? [String: Any] else {
            throw NemotronError.badSafetensors(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart
        var entries: [String: Entry] = [:]
        for (name, value) in dict where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                let shape = (info["shape"] as? [NSNumber])?.map(\.intValue),
                let offsets = (info["data_offsets"] as? [NSNumber])?.map(\.intValue), offsets.count == 2
            else {
                throw NemotronError.badSafetensors(
                    path: path, reason: "entry for tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw NemotronError.badSafetensors(
                    path: path,
                    reason:
                        "tensor '\(name)' byte range [\(begin), \(end)) lies outside the data section (\(dataSize) "
                        + "bytes)"
                )
            }
            let entry = Entry(
                name: name, dtypeName: dtype, shape: shape, offset: dataStart + begin, byteCount: end - begin)
            if let known = entry.elementType, entry.elementCount * known.byteSize != entry.byteCount {
                throw NemotronError.badSafetensors(
                    path: path,
                    reason:
                        "tensor '\(name)' spans \(entry.byteCount) bytes but shape \(shape) of \(dtype) needs "
                        + "\(entry.elementCount * known.byteSize)"
                )
            }
            entries[name] = entry
        }
        return entries
    }
}
