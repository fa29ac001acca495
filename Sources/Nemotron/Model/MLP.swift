/// Dense MLP (`-` layers) and the MoE shared expert: `down(relu(up(u))²)`, no gate, no bias
/// (transformers' `NemotronHMLP`; docs/architecture.md). Holds this rank's slice of the intermediate width:
/// up_proj rows and down_proj columns. The output is this rank's partial sum.
struct MLP {
    /// `[I_local, Hin]` and `[Hin, I_local]`.
    let upProj: WeightMatrix
    let downProj: WeightMatrix

    init(checkpoint: Checkpoint, upName: String, downName: String, inputSize: Int, width: Int, range: Range<Int>) throws
    {
        upProj = try checkpoint.linear(upName, rows: width, cols: inputSize, rowSegments: [range])
        downProj = try checkpoint.linear(downName, rows: inputSize, cols: width, columns: range)
    }

    init(layer: Int, config c: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        try self.init(
            checkpoint: checkpoint, upName: WeightNames.layer(layer, WeightNames.MLP.upProj),
            downName: WeightNames.layer(layer, WeightNames.MLP.downProj),
            inputSize: c.hiddenSize, width: c.ffnSize, range: plan.ffnRange)
    }

    var localWidth: Int { upProj.rows }

    /// u `[T, Hin]` → out `[T, Hin]`, using `hidden` (`[T, I_local]`) as scratch.
    func forward(
        _ u: UnsafePointer<Float>, tokens T: Int, hidden: UnsafeMutablePointer<Float>, _ kernels: KernelContext,
        into out: UnsafeMutablePointer<Float>
    ) {
        MatMul.linear(u, tokens: T, upProj, into: hidden, kernels)
        Activation.relu2(hidden, count: T * localWidth, pool: kernels.pool)
        MatMul.linear(hidden, tokens: T, downProj, into: out, kernels)
    }
}
