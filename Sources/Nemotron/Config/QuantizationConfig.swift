import Foundation

/// How a checkpoint's weights are quantized, from config.json's `quantization_config` or an
/// `hf_quant_config.json` beside it (the older ModelOpt form, `{"producer": …, "quantization":
/// {…}}`), read as vLLM's `ModelOptQuantConfigBase.from_config` reads them:
/// - `quant_method` `modelopt`, `quant_algo` `FP8` (fp8), `NVFP4` or `W4A16_NVFP4` (nvfp4; same
///   storage), or `MIXED_PRECISION` with `quantized_layers` {module: {"quant_algo": …}};
/// - `quant_method` `nemotron-run` (written by `nemotron-run quantize`), `quant_algo` `INT8` or `INT4`,
///   `group_size` 32, and `quantized_layers` for modules in another of the two (an int4 checkpoint's
///   LM head is int8).
/// Modules in `ignore` (`exclude_modules` in hf_quant_config.json; exact names, names they are a
/// part of, or fnmatch wildcards) and, under MIXED_PRECISION, modules not in `quantized_layers`
/// stay in their own dtype. `kv_cache_quant_algo` / `kv_cache_scheme` and the checkpoint's
/// `input_scale`, `k_scale` and `v_scale` are read but not used: activations and the KV cache
/// stay f32.
public struct QuantizationConfig: Sendable, Equatable {
    public enum Method: String, Sendable, CaseIterable {
        case modelopt
        case nemotronRun = "nemotron-run"
    }

    public let method: Method
    /// `quant_algo`, upper-cased as vLLM matches it.
    public let algorithm: String
    /// The format of every quantized module, or nil under MIXED_PRECISION.
    public let format: WeightFormat?
    /// MIXED_PRECISION: module name → format; nemotron-run: modules in a format other than `format`.
    public let layerFormats: [String: WeightFormat]
    /// Modules kept in their own dtype.
    public let ignore: [String]
    /// `kv_cache_quant_algo` (e.g. FP8), read and not used.
    public let kvCacheAlgorithm: String?
    /// The file and key it was read from, for messages.
    public let path: String
    public let key: String

    /// Every quantized format the config names.
    public var formats: Set<WeightFormat> { Set(layerFormats.values).union(format.map { [$0] } ?? []) }

    /// The largest block of inputs any of its formats scales together: tensor-parallel column
    /// cuts must fall on multiples of it.
    public var blockAlignment: Int { formats.map(\.blockSize).max() ?? 1 }

    /// quant_algo values per method, as accepted.
    static let algorithms: [Method: [String: WeightFormat?]] = [
        .modelopt: ["FP8": .fp8, "NVFP4": .nvfp4, "W4A16_NVFP4": .nvfp4, "MIXED_PRECISION": nil],
        .nemotronRun: ["INT8": .int8, "INT4": .int4],
    ]

    /// What a module's config says of it.
    public enum Expectation: Equatable, Sendable {
        case quantized(WeightFormat)
        /// In `ignore`, or not in MIXED_PRECISION's `quantized_layers`.
        case ownDType
    }

    /// `module` is a name as the checkpoint spells it without `.weight` (a wrapper's prefix included).
    public func expectation(module: String) -> Expectation {
        if isIgnored(module) { return .ownDType }
        if let layer = layerFormats[module] { return .quantized(layer) }
        return format.map { .quantized($0) } ?? .ownDType
    }

    func isIgnored(_ module: String) -> Bool {
        ignore.contains { pattern in
            module == pattern || module.hasPrefix(pattern + ".") || fnmatch(pattern, module, 0) == 0
                || (!pattern.contains("*") && module.contains(pattern))
        }
    }

    // MARK: - Parsing

    /// `quantization_config` of a config.json (`json` its value) or an hf_quant_config.json's
    /// whole object (`{"producer": …, "quantization": {…}}`).
    init(json: [String: Any], path: String, key: String) throws {
        self.path = path
        self.key = key
        let fields: [String: Any]
        let methodName: String
        if let nested = json["quantization"] {
            // hf_quant_config.json: the producer names the tool; keys as ModelOpt's legacy export.
            guard let dict = nested as? [String: Any] else {
                throw NemotronError.configValue(
                    path: path, key: "quantization", value: JSONObject.describe(nested), expected: "an object")
            }
            fields = dict
            methodName = ((json["producer"] as? [String: Any])?["name"] as? String) ?? "modelopt"
        } else {
            fields = json
            guard let name = json["quant_method"] as? String else {
                throw NemotronError.configKeyMissing(path: path, key: "\(key).quant_method")
            }
            methodName = name
        }
        guard let method = Method(rawValue: methodName.lowercased()) else {
            throw NemotronError.configValue(
                path: path, key: "\(key).quant_method", value: "\"\(methodName)\"",
                expected: "\"modelopt\" (NVIDIA ModelOpt FP8, NVFP4, MIXED_PRECISION) or \"nemotron-run\" "
                    + "(int8, int4 written by nemotron-run quantize)")
        }
        self.method = method
        let accepted = Self.algorithms[method]!
        guard let rawAlgorithm = fields["quant_algo"] as? String else {
            throw NemotronError.configKeyMissing(path: path, key: "\(key).quant_algo")
        }
        algorithm = rawAlgorithm.uppercased()
        guard let format = accepted[algorithm] else {
            throw NemotronError.configValue(
                path: path, key: "\(key).quant_algo", value: "\"\(rawAlgorithm)\"",
                expected: "one of \(accepted.keys.sorted().joined(separator: ", ")) for quant_method \(method.rawValue)"
            )
        }
        self.format = format
        let ignoreKey = fields["exclude_modules"] != nil ? "exclude_modules" : "ignore"
        let ignoreValue = fields[ignoreKey] ?? []
        guard let ignore = ignoreValue as? [String] else {
            throw NemotronError.configValue(
                path: path, key: "\(key).\(ignoreKey)", value: JSONObject.describe(ignoreValue),
                expected: "a list of module names or wildcards")
        }
        self.ignore = ignore
        kvCacheAlgorithm = (fields["kv_cache_quant_algo"] as? String) ?? Self.kvCacheScheme(fields["kv_cache_scheme"])
        var layerFormats: [String: WeightFormat] = [:]
        // MIXED_PRECISION lists every quantized module; nemotron-run lists the exceptions, if any.
        if format == nil || (method == .nemotronRun && fields["quantized_layers"] != nil) {
            guard let layers = fields["quantized_layers"] as? [String: Any], !layers.isEmpty || format != nil else {
                throw NemotronError.configValue(
                    path: path, key: "\(key).quantized_layers", value: "(missing or empty)",
                    expected: "a mapping of module names to {\"quant_algo\": …} for MIXED_PRECISION")
            }
            let perLayer = accepted.compactMapValues { $0 }
            for (module, value) in layers {
                let name = (value as? [String: Any])?["quant_algo"] as? String
                guard let name, let layerFormat = perLayer[name.uppercased()] else {
                    throw NemotronError.configValue(
                        path: path, key: "\(key).quantized_layers.\(module).quant_algo",
                        value: name.map { "\"\($0)\"" } ?? "(missing)",
                        expected: "one of \(perLayer.keys.sorted().joined(separator: ", "))")
                }
                try Self.checkGroupSize(
                    value, format: layerFormat, path: path, key: "\(key).quantized_layers.\(module)")
                layerFormats[module] = layerFormat
            }
        }
        if let format { try Self.checkGroupSize(fields, format: format, path: path, key: key) }
        self.layerFormats = layerFormats
    }

    /// `group_size`, when given, must be the format's block size.
    private static func checkGroupSize(_ value: Any, format: WeightFormat, path: String, key: String) throws {
        guard let raw = (value as? [String: Any])?["group_size"], !(raw is NSNull) else { return }
        guard JSONObject.integer(raw) == format.blockSize else {
            throw NemotronError.configValue(
                path: path, key: "\(key).group_size", value: JSONObject.describe(raw),
                expected: "\(format.blockSize), the block size of \(format)")
        }
    }

    /// config.json's `kv_cache_scheme` ({"type": "float", "num_bits": 8} is FP8).
    private static func kvCacheScheme(_ value: Any?) -> String? {
        guard let scheme = value as? [String: Any] else { return nil }
        return scheme["type"] as? String == "float" && JSONObject.integer(scheme["num_bits"] ?? 0) == 8
            ? "FP8" : "other"
    }

    /// One line for run headers and `inspect`.
    public var summary: String {
        var text = "\(method.rawValue) \(algorithm)"
        if format == nil {
            let counts = Dictionary(grouping: layerFormats.values, by: { $0 }).mapValues(\.count)
            text +=
                " ("
                + counts.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key)" }
                .joined(separator: ", ") + " modules)"
        } else if !layerFormats.isEmpty {
            text +=
                " (" + layerFormats.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                + ")"
        }
        if !ignore.isEmpty { text += "; own dtype: \(ignore.joined(separator: ", "))" }
        if let kvCacheAlgorithm { text += "; kv cache \(kvCacheAlgorithm) asked, kept f32" }
        return text
    }

    /// The `quantization_config` nemotron-run writes for a checkpoint quantized to `format`:
    /// the ModelOpt form for fp8 and nvfp4, its own method for int8 and int4, with `overrides`
    /// (module → format) as its `quantized_layers`.
    public static func written(
        format: WeightFormat, ignore: [String], overrides: [String: WeightFormat] = [:]
    ) -> [String: Any] {
        precondition(overrides.isEmpty || format == .int8 || format == .int4, "only nemotron-run lists exceptions")
        var config = written(format: format, ignore: ignore)
        if !overrides.isEmpty {
            config["quantized_layers"] = overrides.mapValues { ["quant_algo": $0.rawValue.uppercased()] }
        }
        return config
    }

    private static func written(format: WeightFormat, ignore: [String]) -> [String: Any] {
        switch format {
        case .fp8: return ["quant_method": "modelopt", "quant_algo": "FP8", "ignore": ignore]
        case .nvfp4:
            return ["quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16, "ignore": ignore]
        case .int8, .int4:
            return [
                "quant_method": Method.nemotronRun.rawValue, "quant_algo": format.rawValue.uppercased(),
                "group_size": 32, "ignore": ignore,
            ]
        case .f32, .bf16, .f16: preconditionFailure("\(format) is not a quantized format")
        }
    }
}
