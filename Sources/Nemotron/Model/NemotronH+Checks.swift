import Foundation

/// Checks of a checkpoint against its config that run before any weight is loaded, for
/// mistakes that would otherwise run and give a wrong answer without a word.
extension NemotronH {
    /// Tensors whose values are read whole at load: norm weights, Mamba's A_log, D, dt_bias and
    /// conv1d, the router's correction bias. A NaN or infinity there makes every logit NaN.
    static let checkedLeaves = [
        WeightNames.norm, WeightNames.Mamba.aLog, WeightNames.Mamba.d, WeightNames.Mamba.dtBias,
        WeightNames.Mamba.conv1dWeight, WeightNames.Mamba.conv1dBias, WeightNames.MoE.eScoreCorrectionBias,
    ]

    /// The checkpoint holds no layer beyond the config's pattern (a shorter pattern would run
    /// fewer layers), and the small tensors of `checkedLeaves` and `norm_f` are finite.
    static func check(_ checkpoint: Checkpoint, against config: ModelConfig) throws {
        let layerPrefix = WeightNames.backbone + "layers."
        var deepest: (layer: Int, name: String)?
        for name in checkpoint.names where name.hasPrefix(layerPrefix) {
            let index = name.dropFirst(layerPrefix.count).prefix { $0.isNumber }
            if let layer = Int(index), layer >= config.numLayers, layer > deepest?.layer ?? -1 {
                deepest = (layer, name)
            }
        }
        if let deepest {
            throw NemotronError.configValue(
                path: checkpoint.directory.appendingPathComponent("config.json").path,
                key: "hybrid_override_pattern (or layers_block_type)",
                value: "\"\(config.pattern)\" (\(config.numLayers) layers)",
                expected:
                    "one character per checkpoint layer: the weights have layers up to \(deepest.layer) "
                    + "(e.g. '\(checkpoint.prefix)\(deepest.name)'), so \(deepest.layer + 1) layers")
        }
        for name in checkpoint.names
        where name == WeightNames.normF
            || (name.hasPrefix(layerPrefix) && checkedLeaves.contains(where: name.hasSuffix))
        {
            let (file, entry) = try checkpoint.entry(name)
            let values = try checkpoint.floats(name, shapes: [entry.shape])
            if let index = values.firstIndex(where: { !$0.isFinite }) {
                throw NemotronError.nonFiniteTensor(
                    name: entry.name, path: file.path, index: index, value: values[index])
            }
        }
    }
}
