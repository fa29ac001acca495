import CKernels

/// Rows of f32 activations `[rows, width]` quantized to int8 per block of 32 inputs, one
/// `ck_q8_quantize_activation` package per row: the input the int8 GEMVs of `QuantKernels` read.
///
/// Made either by the GEMV itself from its input, or ahead of it by the fused block boundary
/// (`ForwardCollectives.enterBlock`), which quantizes each normed row in the pass that writes it.
/// Every int8 product whose input is `source` (a Mamba in_proj, the q, k and v projections, a
/// shared expert's and a decode token's routed experts' up projections) then reuses the
/// packages instead of quantizing the same rows again (`Workspace.quantizedRows`).
public struct QuantizedRows: @unchecked Sendable {
    /// The f32 rows the packages were made from; a GEMV reuses them only for this exact input.
    let source: UnsafePointer<Float>
    let rows: Int
    let width: Int
    /// `rows` packages of `stride` bytes, the first on a 64-byte boundary.
    let base: UnsafeMutableRawPointer

    /// Bytes of one row's package.
    var stride: Int { Self.stride(width: width) }

    /// Bytes of one row's package for rows of `width`.
    static func stride(width: Int) -> Int { ck_q8_activation_bytes(width) }

    /// Room for `rows` packages in `slot` of `workspace`, for rows read from `source`.
    /// `width` must be a multiple of 32.
    init(for source: UnsafePointer<Float>, rows: Int, width: Int, in workspace: Workspace, slot: Workspace.Slot) {
        precondition(width % 32 == 0, "int8 activation packages need whole blocks of 32, not \(width)")
        self.source = source
        self.rows = rows
        self.width = width
        base = workspace.alignedBytes(slot, count: rows * Self.stride(width: width))
    }

    /// The packages of rows `first...`, as rows 0...: for collectives that work on chunks of rows.
    public func rows(from first: Int) -> QuantizedRows {
        QuantizedRows(source: source + first * width, rows: rows - first, width: width, base: base + first * stride)
    }

    private init(source: UnsafePointer<Float>, rows: Int, width: Int, base: UnsafeMutableRawPointer) {
        self.source = source
        self.rows = rows
        self.width = width
        self.base = base
    }

    /// Packages at `base` (64-byte aligned, `rows · stride(width:)` bytes) for rows read from `source`.
    init(for source: UnsafePointer<Float>, rows: Int, width: Int, at base: UnsafeMutableRawPointer) {
        precondition(width % 32 == 0, "int8 activation packages need whole blocks of 32, not \(width)")
        self.init(source: source, rows: rows, width: width, base: base)
    }

    /// Quantizes row `r` of `source` into its package (once the row holds its final values).
    public func quantize(row r: Int) {
        ck_q8_quantize_activation(source + r * width, width, base + r * stride)
    }

    /// Quantizes rows `range` of `source`.
    public func quantize(rows range: Range<Int>) {
        for r in range { quantize(row: r) }
    }

    /// Whether these packages are `x` quantized, for a product of `tokens` rows of `width`.
    func holds(_ x: UnsafePointer<Float>, tokens: Int, width: Int) -> Bool {
        source == x && rows == tokens && self.width == width
    }
}
