import Foundation

/// Writes a quantized copy of a float checkpoint (`nemotron-run quantize`), so that the next
/// load needs no work: every linear weight (`WeightNames.isLinear`) not matched by `ignore` is
/// quantized with `WeightQuantizer`, every other tensor is copied as it is, into one
/// `model.safetensors`; config.json gets a `quantization_config`, and the tokenizer and
/// generation files are copied.
///
/// Tensors, as ModelOpt exports them: `X.weight` (I8 for int8; U8 `[rows, cols/2]` for int4 and
/// nvfp4; F8_E4M3 for fp8), `X.weight_scale` (F16 `[rows, cols/32]` for int8 and int4; F32 `[]` for
/// fp8; F8_E4M3 `[rows, cols/16]` for nvfp4) and `X.weight_scale_2` (F32 `[]`, nvfp4). The config is
/// ModelOpt's (`quant_method: modelopt`, `quant_algo: FP8 | NVFP4`) for fp8 and nvfp4 and
/// nemotron-run's (`quant_method: nemotron-run`, `quant_algo: INT8 | INT4`, `group_size: 32`) for
/// int8 and int4. No activation scales are written: the weights are quantized, not the
/// activations (engines that quantize activations, such as W8A8 / W4A4 GPU kernels, need a
/// calibrated `input_scale` this tool cannot make).
public enum CheckpointQuantizer {
    public struct Summary: Sendable {
        /// Linear weights quantized, and tensors copied as they were.
        public let quantized: Int
        public let copied: Int
        public let inputBytes: Int
        public let outputBytes: Int
    }

    /// Files copied beside the weights: everything but the weights, their index, config.json
    /// and an hf_quant_config.json, if it is JSON, a chat template, text or a tokenizer model.
    static let copiedExtensions: Set<String> = ["json", "jinja", "txt", "model", "tiktoken"]

    public static func quantize(
        from input: URL, to output: URL, format: WeightFormat, ignore: [String] = [],
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> Summary {
        precondition(!format.isPlain, "\(format) is not a quantized format")
        let config = try ModelConfig(directory: input)
        if let stored = config.quantization {
            throw NemotronError.invalidArgument(
                name: "--model", value: input.path,
                expected: "a bf16, f16 or f32 checkpoint; it is already quantized (\(stored.path): \(stored.key) "
                    + "has quant_method \(stored.method.rawValue), quant_algo \(stored.algorithm))")
        }
        let checkpoint = try Checkpoint(directory: input)
        let prefix = config.weightPrefix
        let overrides =
            format == .int4 && !config.tieWordEmbeddings && checkpoint.contains(prefix + WeightNames.lmHead)
            ? [prefix + "lm_head": WeightQuantizer.format(for: WeightNames.lmHead, quantizedTo: format)] : [:]
        let writtenConfig = QuantizationConfig.written(format: format, ignore: ignore, overrides: overrides)
        let rule = try QuantizationConfig(json: writtenConfig, path: "(quantize)", key: "quantization_config")
        func quantizes(_ name: String) -> Bool {
            guard name.hasPrefix(prefix) else { return false }
            let local = String(name.dropFirst(prefix.count))
            if local == WeightNames.lmHead && config.tieWordEmbeddings { return false }
            return WeightNames.isLinear(local)
                && rule.expectation(module: String(name.dropLast(".weight".count))) != .ownDType
        }

        // Plan every tensor first: the header lists them all before any bytes.
        var headers: [SafetensorsStreamWriter.Header] = []
        var sources: [(name: String, part: Part)] = []
        var quantized = 0
        for name in checkpoint.names {
            let (file, entry) = try checkpoint.entry(name)
            guard quantizes(name) else {
                headers.append(
                    .init(name: name, dtype: entry.dtypeName, shape: entry.shape, byteCount: entry.byteCount))
                sources.append((name, .copy))
                continue
            }
            guard let plain = entry.elementType.flatMap(WeightFormat.init(element:)), entry.shape.count == 2 else {
                throw NemotronError.tensorDType(
                    name: name, path: file.path, dtype: "\(entry.dtypeName) \(entry.shape)",
                    allowed: WeightFormat.plainElements.map { "\($0.rawValue) [rows, cols]" })
            }
            let (rows, cols) = (entry.shape[0], entry.shape[1])
            let format = WeightQuantizer.format(for: String(name.dropFirst(prefix.count)), quantizedTo: format)
            guard cols % format.blockSize == 0 else {
                throw NemotronError.quantizedWeight(
                    name: name, path: file.path,
                    reason: "has \(cols) inputs, not a whole number of \(format) blocks of \(format.blockSize): "
                        + "it cannot be quantized to \(format) (pass --ignore \(name.dropLast(".weight".count)) to "
                        + "keep it \(plain))")
            }
            quantized += 1
            let module = String(name.dropLast(".weight".count))
            headers.append(
                .init(
                    name: name, dtype: format.storageElement.rawValue, shape: [rows, format.bytes(elements: cols)],
                    byteCount: rows * format.bytes(elements: cols)))
            sources.append((name, .data(format)))
            switch format.scaleLayout {
            case .none: break
            case .perTensor:
                headers.append(.init(name: module + ".weight_scale", dtype: "F32", shape: [], byteCount: 4))
                sources.append((name, .tensorScale))
            case .perBlock(let element, let hasTensorScale):
                let blocks = cols / format.blockSize
                headers.append(
                    .init(
                        name: module + ".weight_scale", dtype: element.rawValue, shape: [rows, blocks],
                        byteCount: rows * blocks * element.byteSize))
                sources.append((name, .blockScales))
                if hasTensorScale {
                    headers.append(.init(name: module + ".weight_scale_2", dtype: "F32", shape: [], byteCount: 4))
                    sources.append((name, .tensorScale))
                }
            }
        }

        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let weights = output.appendingPathComponent("model.safetensors")
        var current: (name: String, matrix: WeightMatrix)?
        // A copied tensor's pages are dropped once written, so the copy never holds the checkpoint.
        var written: (base: UnsafeRawPointer, count: Int)?
        let scale = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        defer { scale.deallocate() }
        try SafetensorsStreamWriter.write(headers, metadata: ["format": "pt"], to: weights.path) { index in
            progress(index + 1, headers.count)
            if let done = written { checkpoint.release(done.base, byteCount: done.count) }
            written = nil
            let (name, part) = sources[index]
            let (file, entry) = try checkpoint.entry(name)
            if case .copy = part {
                current = nil
                written = (file.pointer(entry), entry.byteCount)
                return UnsafeRawBufferPointer(start: file.pointer(entry), count: entry.byteCount)
            }
            if current?.name != name {
                let source = WeightMatrix(
                    rows: entry.shape[0], cols: entry.shape[1], format: WeightFormat(element: entry.elementType!)!,
                    base: file.pointer(entry))
                guard case .data(let target) = part else { preconditionFailure("a weight's data comes first") }
                current = (name, WeightQuantizer.quantize(source, to: target))
                checkpoint.release(source.base, byteCount: entry.byteCount)
            }
            let matrix = current!.matrix
            switch part {
            case .data: return UnsafeRawBufferPointer(start: matrix.base, count: matrix.rows * matrix.rowBytes)
            case .blockScales:
                return UnsafeRawBufferPointer(
                    start: matrix.scales.blockBase, count: matrix.scales.byteCount(rows: matrix.rows))
            case .tensorScale:
                scale.pointee = matrix.scales.tensorScale
                return UnsafeRawBufferPointer(start: scale, count: 4)
            case .copy: preconditionFailure()
            }
        }
        try writeConfig(from: input, to: output, quantization: writtenConfig)
        try copyFiles(from: input, to: output)
        let outputBytes = (try? FileManager.default.attributesOfItem(atPath: weights.path)[.size] as? Int) ?? 0
        return Summary(
            quantized: quantized,
            copied: sources.filter { if case .copy = $0.part { return true } else { return false } }.count,
            inputBytes: checkpoint.fileBytes,
            outputBytes: outputBytes)
    }

    /// Which bytes of a planned tensor: a copy of the source, or a part of a quantized weight.
    private enum Part {
        case copy
        case data(WeightFormat)
        case blockScales
        case tensorScale
    }

    /// config.json as it was, with `quantization_config` added as its first key (the text is kept:
    /// published configs hold bare `Infinity`, which JSONSerialization cannot write back).
    private static func writeConfig(from input: URL, to output: URL, quantization: [String: Any]) throws {
        let source = input.appendingPathComponent("config.json")
        guard var text = try? String(contentsOf: source, encoding: .utf8), let open = text.firstIndex(of: "{") else {
            throw NemotronError.fileUnreadable(path: source.path, reason: "not a JSON object")
        }
        let object = try JSONSerialization.data(withJSONObject: quantization, options: [.sortedKeys])
        let rest = text[text.index(after: open)...].trimmingCharacters(in: .whitespacesAndNewlines)
        let separator = rest.hasPrefix("}") ? "" : ","
        text.insert(
            contentsOf: "\n  \"quantization_config\": \(String(decoding: object, as: UTF8.self))\(separator)",
            at: text.index(after: open))
        do { try text.write(to: output.appendingPathComponent("config.json"), atomically: true, encoding: .utf8) } catch
        {
            throw NemotronError.fileUnreadable(
                path: output.appendingPathComponent("config.json").path, reason: "cannot write: \(error)")
        }
    }

    private static func copyFiles(from input: URL, to output: URL) throws {
        let skipped: Set<String> = ["config.json", "model.safetensors.index.json", "hf_quant_config.json"]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: input.path)) ?? []
        for file in files.sorted() where !skipped.contains(file) {
            guard copiedExtensions.contains(URL(fileURLWithPath: file).pathExtension) else { continue }
            let target = output.appendingPathComponent(file)
            try? FileManager.default.removeItem(at: target)
            do { try FileManager.default.copyItem(at: input.appendingPathComponent(file), to: target) } catch {
                throw NemotronError.fileUnreadable(path: target.path, reason: "cannot copy: \(error)")
            }
        }
    }
}
