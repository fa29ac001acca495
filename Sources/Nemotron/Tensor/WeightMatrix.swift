import CKernels

/// A row-major `[rows, cols]` weight (PyTorch `[out, in]`) in its storage format, with its
/// scales. It points into the memory-mapped file, or into an owned copy when a rank keeps only
/// a slice that is not contiguous in the file. Never widened to f32 as a whole.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let format: WeightFormat
    /// The first byte of row 0; rows are `rowBytes` apart.
    public let base: UnsafeRawPointer
    public let scales: WeightScales
    /// Keeps owned copies alive; empty when everything points into a mapping the model keeps.
    let owners: [OwnedBytes]

    public init(
        rows: Int, cols: Int, format: WeightFormat, base: UnsafeRawPointer, scales: WeightScales = .none,
        owners: [OwnedBytes] = []
    ) {
        precondition(cols % format.blockSize == 0, "\(cols) columns are not whole blocks of \(format.blockSize)")
        self.rows = rows
        self.cols = cols
        self.format = format
        self.base = base
        self.scales = scales
        self.owners = owners
    }

    public var rowBytes: Int { format.bytes(elements: cols) }
    /// Bytes of the elements and their scales.
    public var byteCount: Int { rows * rowBytes + scales.byteCount(rows: rows) }
    /// Whether the bytes are this matrix's own copy rather than a view of the mapping.
    public var isCopy: Bool { !owners.isEmpty }

    /// Writes row `row` dequantized to f32 into `out` (`cols` floats).
    public func row(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        rows(from: row, count: 1, into: out)
    }

    /// Dequantizes `count` consecutive rows starting at `first` into `out` (`count·cols` floats).
    func rows(from first: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        let source = base + first * rowBytes
        let n = count * cols
        switch format {
        case .f32: out.update(from: source.assumingMemoryBound(to: Float.self), count: n)
        case .bf16: ck_bf16_to_f32(source.assumingMemoryBound(to: UInt16.self), out, n)
        case .f16: ck_f16_to_f32(source.assumingMemoryBound(to: UInt16.self), out, n)
        case .int8, .int4, .fp8, .nvfp4:
            QuantKernels.dequantizeRows(self, first..<first + count, into: out)
        }
    }

    /// The listed row segments (concatenated in order) and the given columns. Zero-copy when the
    /// kept part is contiguous in memory; otherwise the kept rows (and their scales) are copied.
    /// `name` is used in the error when `columns` would cut a block of the format.
    public func slice(rowSegments: [Range<Int>], columns: Range<Int>, name: String) throws -> WeightMatrix {
        let block = format.blockSize
        guard columns.lowerBound % block == 0, columns.upperBound % block == 0 || columns.upperBound == cols else {
            throw NemotronError.parallel(
                reason: "tensor '\(name)' (\(format)): columns \(columns.lowerBound)..<\(columns.upperBound) "
                    + "would cut its blocks of \(block) inputs")
        }
        let segments = Self.merged(rowSegments.filter { !$0.isEmpty })
        let keptRows = segments.reduce(0) { $0 + $1.count }
        if columns == 0..<cols && segments.count <= 1 {
            let first = segments.first?.lowerBound ?? 0
            return WeightMatrix(
                rows: keptRows, cols: cols, format: format, base: base + first * rowBytes,
                scales: scales.rows(from: first), owners: owners)
        }
        let bytes = format.bytes(elements: columns.lowerBound)..<format.bytes(elements: columns.upperBound)
        let data = Self.copy(base, rowBytes: rowBytes, segments: segments, bytes: bytes)
        let (keptScales, scaleOwner) = scales.slice(
            rowSegments: segments, blocks: columns.lowerBound / block..<columns.upperBound / block,
            copy: Self.copy)
        return WeightMatrix(
            rows: keptRows, cols: columns.count, format: format, base: UnsafeRawPointer(data.pointer),
            scales: keptScales, owners: [data] + (scaleOwner.map { [$0] } ?? []))
    }

    /// Copies byte range `bytes` of every row in `segments` (rows `rowBytes` apart) into a new allocation.
    static func copy(_ base: UnsafeRawPointer, rowBytes: Int, segments: [Range<Int>], bytes: Range<Int>) -> OwnedBytes {
        let rows = segments.reduce(0) { $0 + $1.count }
        let owned = OwnedBytes(byteCount: rows * bytes.count)
        var out = 0
        for row in segments.joined() {
            (owned.pointer + out * bytes.count).copyMemory(
                from: base + row * rowBytes + bytes.lowerBound, byteCount: bytes.count)
            out += 1
        }
        return owned
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
}

/// The scales of a weight matrix, in the layout its format names.
public enum WeightScales: @unchecked Sendable {
    case none
    /// One scale for the whole tensor.
    case perTensor(Float)
    /// `[rows, blocksPerRow]` scales of `element` starting at `base`, each multiplied by
    /// `tensorScale` (NVFP4's `weight_scale_2`; 1 for formats without one).
    case perBlock(base: UnsafeRawPointer, element: ElementType, blocksPerRow: Int, tensorScale: Float)

    func byteCount(rows: Int) -> Int {
        if case .perBlock(_, let element, let blocksPerRow, _) = self {
            return rows * blocksPerRow * element.byteSize
        }
        return 0
    }

    /// The first block scale of row 0, for kernels: nil without per-block scales.
    var blockBase: UnsafeRawPointer? {
        if case .perBlock(let base, _, _, _) = self { return base }
        return nil
    }

    /// The one f32 scale of the tensor (fp8's `weight_scale`, nvfp4's `weight_scale_2`), 1 without one.
    var tensorScale: Float {
        switch self {
        case .none: return 1
        case .perTensor(let scale): return scale
        case .perBlock(_, _, _, let scale): return scale
        }
    }

    /// The scales of the rows from `first` on (a contiguous row slice).
    func rows(from first: Int) -> WeightScales {
        guard case .perBlock(let base, let element, let blocksPerRow, let tensorScale) = self else { return self }
        return .perBlock(
            base: base + first * blocksPerRow * element.byteSize, element: element, blocksPerRow: blocksPerRow,
            tensorScale: tensorScale)
    }

    /// The scales of the kept rows and blocks, copied with `copy` when they are per block.
    func slice(
        rowSegments: [Range<Int>], blocks: Range<Int>,
        copy: (UnsafeRawPointer, Int, [Range<Int>], Range<Int>) -> OwnedBytes
    ) -> (WeightScales, OwnedBytes?) {
        guard case .perBlock(let base, let element, let blocksPerRow, let tensorScale) = self else {
            return (self, nil)
        }
        let size = element.byteSize
        let owned = copy(base, blocksPerRow * size, rowSegments, blocks.lowerBound * size..<blocks.upperBound * size)
        return (
            .perBlock(
                base: UnsafeRawPointer(owned.pointer), element: element, blocksPerRow: blocks.count,
                tensorScale: tensorScale),
            owned
        )
    }
}

/// A heap allocation freed with its last reference.
public final class OwnedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(byteCount: Int) { pointer = .allocate(byteCount: max(byteCount, 1), alignment: 64) }
    deinit { pointer.deallocate() }
}
