/// Linear layers' weights: stored as floats or quantized (`WeightFormat`), and quantized on load
/// when the run asks (`quantizeOnLoad`).
///
/// A quantized weight `X.weight` comes with its scales beside it, as ModelOpt exports them:
/// `X.weight_scale` (F32 scalar for fp8; F8_E4M3 `[rows, cols/16]` for nvfp4; F16 `[rows, cols/32]`
/// for int8 and int4) and, for nvfp4, `X.weight_scale_2` (F32 scalar). `X.input_scale` and the
/// attention's `k_scale` / `v_scale` are activation scales: checked when present, not used
/// (activations and the KV cache stay f32). The stored format follows from the dtype (and, for
/// U8, from `quant_method`: nvfp4 under modelopt, int4 under nemotron-run); where the config names
/// a module's format, the dtype must agree.
extension Checkpoint {
    /// A linear layer's weight `[rows, cols]` (PyTorch `[out, in]`), keeping the listed row
    /// segments and columns. Quantized weights stay quantized and keep their scales; float weights
    /// are quantized into `quantizeOnLoad` after slicing (this rank's slice only), else kept as
    /// they are. Zero-copy where the kept part is contiguous in the file.
    public func linear(
        _ name: String, rows: Int, cols: Int, rowSegments: [Range<Int>]? = nil, columns: Range<Int>? = nil
    ) throws -> WeightMatrix {
        let whole = try storedLinear(name, rows: rows, cols: cols)
        let kept = try whole.slice(
            rowSegments: rowSegments ?? [0..<rows], columns: columns ?? 0..<cols, name: prefix + name)
        guard whole.format.isPlain, let asked = quantizeOnLoad else {
            if kept.isCopy { release(whole.base, byteCount: whole.rows * whole.rowBytes) }
            return kept
        }
        let target = WeightQuantizer.format(for: name, quantizedTo: asked)
        guard cols % target.blockSize == 0 else {
            throw NemotronError.quantizedWeight(
                name: prefix + name, path: try entry(name).file.path,
                reason: "has \(cols) inputs, not a whole number of \(target) blocks of \(target.blockSize): "
                    + "it cannot be quantized to \(target)")
        }
        let quantized = WeightQuantizer.quantize(kept, to: target)
        // Only the quantized copy stays resident, not the pages the floats were read from.
        release(whole.base, byteCount: whole.rows * whole.rowBytes)
        return quantized
    }

    /// The stored format of a linear weight, or nil when it is absent.
    public func storedFormat(_ name: String) throws -> WeightFormat? {
        guard contains(name) else { return nil }
        let (file, entry) = try entry(name)
        return try format(of: entry, module: module(name), path: file.path)
    }

    /// The whole weight as stored, with its scales, viewed in the mapping.
    private func storedLinear(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        let (file, entry) = try entry(name)
        let module = module(name)
        let format = try format(of: entry, module: module, path: file.path)
        if format.isPlain {
            guard entry.shape == [rows, cols] else {
                throw NemotronError.tensorShape(
                    name: entry.name, path: file.path, shape: entry.shape, expected: [rows, cols])
            }
            return WeightMatrix(rows: rows, cols: cols, format: format, base: file.pointer(entry))
        }
        guard cols % format.blockSize == 0 else {
            throw NemotronError.quantizedWeight(
                name: entry.name, path: file.path,
                reason: "is \(format) but its \(cols) inputs are not whole blocks of \(format.blockSize)")
        }
        let expected = [rows, format.bytes(elements: cols)]
        guard entry.shape == expected else {
            throw NemotronError.tensorShape(name: entry.name, path: file.path, shape: entry.shape, expected: expected)
        }
        if contains(module + ".input_scale") { _ = try scalar(module + ".input_scale", weight: name, format: format) }
        let scales: WeightScales
        switch format.scaleLayout {
        case .none: scales = .none
        case .perTensor: scales = .perTensor(try scalar(module + ".weight_scale", weight: name, format: format))
        case .perBlock(let element, let hasTensorScale):
            let blocks = cols / format.blockSize
            let base = try scaleTensor(
                module + ".weight_scale", element: element, shape: [rows, blocks], weight: name, format: format)
            let tensorScale = hasTensorScale ? try scalar(module + ".weight_scale_2", weight: name, format: format) : 1
            scales = .perBlock(base: base, element: element, blocksPerRow: blocks, tensorScale: tensorScale)
        }
        return WeightMatrix(rows: rows, cols: cols, format: format, base: file.pointer(entry), scales: scales)
    }

    /// `X.weight` → `X`.
    private func module(_ name: String) -> String {
        name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
    }

    /// The format a weight tensor is stored in, checked against the quantization config.
    private func format(of entry: SafetensorsFile.Entry, module: String, path: String) throws -> WeightFormat {
        let allowed = [ElementType.f32, .bf16, .f16, .f8e4m3, .u8, .i8].map(\.rawValue)
        guard let element = entry.elementType else {
            throw NemotronError.tensorDType(name: entry.name, path: path, dtype: entry.dtypeName, allowed: allowed)
        }
        let expectation = quantization?.expectation(module: prefix + module)
        if let plain = WeightFormat(element: element) {
            if case .quantized(let expected) = expectation, quantization?.format == nil {
                // MIXED_PRECISION names this module's format: a float tensor contradicts it.
                throw NemotronError.quantizedWeight(
                    name: entry.name, path: path,
                    reason: "is \(entry.dtypeName), but \(quantization!.path) lists '\(prefix + module)' as \(expected)"
                )
            }
            return plain
        }
        guard let quantization else {
            throw NemotronError.quantizedWeight(
                name: entry.name, path: path,
                reason: "has the quantized dtype \(entry.dtypeName), but config.json has no quantization_config "
                    + "(nor is there an hf_quant_config.json)")
        }
        let stored: WeightFormat?
        switch (element, quantization.method) {
        case (.f8e4m3, .modelopt): stored = .fp8
        case (.u8, .modelopt): stored = .nvfp4
        case (.u8, .nemotronRun): stored = .int4
        case (.i8, .nemotronRun): stored = .int8
        default: stored = nil
        }
        guard let stored else {
            throw NemotronError.tensorDType(
                name: entry.name, path: path, dtype: entry.dtypeName,
                allowed: ["F32", "BF16", "F16"]
                    + (quantization.method == .modelopt
                        ? ["F8_E4M3 (fp8)", "U8 (nvfp4)"] : ["I8 (int8)", "U8 (int4)"]))
        }
        if case .quantized(let expected) = expectation, expected != stored {
            throw NemotronError.quantizedWeight(
                name: entry.name, path: path,
                reason: "is \(entry.dtypeName) (\(stored)), but \(quantization.path) says '\(prefix + module)' is "
                    + "\(expected) (quant_algo \(quantization.algorithm))")
        }
        return stored
    }

    /// A per-tensor F32 scale (shape [] or [1]).
    private func scalar(_ name: String, weight: String, format: WeightFormat) throws -> Float {
        let base = try scaleTensor(name, element: .f32, shape: [], weight: weight, format: format)
        let value = base.loadUnaligned(as: Float.self)
        guard value.isFinite else {
            let (file, entry) = try entry(name)
            throw NemotronError.quantizedWeight(
                name: entry.name, path: file.path, reason: "holds \(value); a scale must be a finite number")
        }
        return value
    }

    /// A scale tensor of `element` and `shape` (a scalar also as [1]), as a pointer into the mapping.
    private func scaleTensor(
        _ name: String, element: ElementType, shape: [Int], weight: String, format: WeightFormat
    ) throws -> UnsafeRawPointer {
        guard contains(name) else {
            throw NemotronError.scaleMissing(
                name: prefix + name, weight: prefix + weight, format: format.rawValue,
                searched: files.map(\.path).joined(separator: ", "))
        }
        let (file, entry) = try entry(name)
        guard entry.elementType == element else {
            throw NemotronError.tensorDType(
                name: entry.name, path: file.path, dtype: entry.dtypeName, allowed: [element.rawValue])
        }
        guard entry.shape == shape || (shape.isEmpty && entry.shape == [1]) else {
            throw NemotronError.tensorShape(name: entry.name, path: file.path, shape: entry.shape, expected: shape)
        }
        return file.pointer(entry)
    }

    /// Checks an attention's activation scale (`k_proj.k_scale`, `v_proj.v_scale`) when present:
    /// an F32 scalar, read and not used (the KV cache stays f32).
    public func checkActivationScale(_ name: String) throws {
        guard contains(name) else { return }
        let (file, entry) = try entry(name)
        guard entry.elementType == .f32, entry.elementCount == 1 else {
            throw NemotronError.tensorShape(name: entry.name, path: file.path, shape: entry.shape, expected: [])
        }
    }
}
