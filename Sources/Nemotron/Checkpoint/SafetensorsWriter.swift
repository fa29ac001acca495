import Foundation

/// Writes F32 tensors in safetensors format (the `logits` and `step_logits` outputs).
public enum SafetensorsWriter {
    public struct Tensor {
        public let name: String
        public let shape: [Int]
        public let values: [Float]
        public init(name: String, shape: [Int], values: [Float]) {
            precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    public static func write(_ tensors: [Tensor], to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // The data section starts 8-byte aligned; pad the header with spaces.
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for tensor in tensors { tensor.values.withUnsafeBytes { data.append(contentsOf: $0) } }
        do { try data.write(to: URL(fileURLWithPath: path)) } catch {
            throw NemotronError.fileUnreadable(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// Writes a safetensors file tensor by tensor, so that a whole checkpoint never sits in memory:
/// the header (every name, dtype, shape and byte range) first, then each tensor's bytes as
/// `bytes(i)` produces them, in order.
public enum SafetensorsStreamWriter {
    public struct Header: Sendable {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        public let byteCount: Int
        public init(name: String, dtype: String, shape: [Int], byteCount: Int) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.byteCount = byteCount
        }
    }

    public static func write(
        _ headers: [Header], metadata: [String: String] = [:], to path: String,
        bytes: (Int) throws -> UnsafeRawBufferPointer
    ) throws {
        var header: [String: Any] = metadata.isEmpty ? [:] : ["__metadata__": metadata]
        var offset = 0
        for tensor in headers {
            header[tensor.name] = [
                "dtype": tensor.dtype, "shape": tensor.shape, "data_offsets": [offset, offset + tensor.byteCount],
            ]
            offset += tensor.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw NemotronError.fileUnreadable(path: path, reason: "cannot create it for writing")
        }
        defer { try? handle.close() }
        do {
            var length = UInt64(json.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: json)
            for (index, tensor) in headers.enumerated() {
                let data = try bytes(index)
                precondition(
                    data.count == tensor.byteCount, "\(tensor.name): \(data.count) bytes, not \(tensor.byteCount)")
                if data.count > 0 {
                    try handle.write(
                        contentsOf: Data(
                            bytesNoCopy: UnsafeMutableRawPointer(mutating: data.baseAddress!), count: data.count,
                            deallocator: .none))
                }
            }
        } catch let error as NemotronError {
            throw error
        } catch {
            throw NemotronError.fileUnreadable(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
