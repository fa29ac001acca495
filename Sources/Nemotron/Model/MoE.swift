/// Mixture-of-experts layer (`E` layers), mirroring transformers' `NemotronHMoE` (spec §3.6):
/// `out = Σ_e w_e · Expert_e(û) + SharedExpert(u)`, experts being relu² MLPs without gate,
/// `û = u` or, for LatentMoE, `û = fc1(u)` with `fc2` applied to the routed sum.
///
/// Tensor parallel: every rank holds a slice of every expert's intermediate width and of the
/// shared expert; router and latent projections are replicated (fc2 is linear, so applying it
/// to a partial sum is exact). One partial sum for routed + shared; the block boundary reduces it.
struct MoE {
    let layer: Int
    let router: MoERouter
    /// One per routed expert, each `[Im_local, Hin]` up and `[Hin, Im_local]` down.
    let experts: [MLP]
    let sharedExpert: MLP
    /// LatentMoE `[Hl, H]` and `[H, Hl]`, nil otherwise.
    let fc1LatentProj: WeightMatrix?
    let fc2LatentProj: WeightMatrix?
    let hiddenSize: Int
    let expertInputSize: Int

    init(layer: Int, config c: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        let name = { WeightNames.layer(layer, $0) }
        self.layer = layer
        router = try MoERouter(layer: layer, config: c, checkpoint: checkpoint)
        hiddenSize = c.hiddenSize
        expertInputSize = c.expertInputSize
        experts = try (0..<c.numExperts).map { e in
            try MLP(checkpoint: checkpoint, upName: name(WeightNames.MoE.expertUpProj(e)), downName: name(WeightNames.MoE.expertDownProj(e)),
                    inputSize: c.expertInputSize, width: c.moeFFNSize, range: plan.moeFFNRange)
        }
        sharedExpert = try MLP(checkpoint: checkpoint, upName: name(WeightNames.MoE.sharedUpProj), downName: name(WeightNames.MoE.sharedDownProj),
                               inputSize: c.hiddenSize, width: c.sharedExpertFFNSize, range: plan.sharedFFNRange)
        if let latent = c.moeLatentSize {
            fc1LatentProj = try checkpoint.matrix(name(WeightNames.MoE.fc1LatentProj), rows: latent, cols: c.hiddenSize)
            fc2LatentProj = try checkpoint.matrix(name(WeightNames.MoE.fc2LatentProj), rows: c.hiddenSize, cols: latent)
        } else {
            fc1LatentProj = nil
            fc2LatentProj = nil
        }
    }

    /// u `[T, H]` normed input → out `[T, H]` partial sum over ranks.
    func forward(_ u: UnsafePointer<Float>, tokens T: Int, workspace ws: Workspace, into out: UnsafeMutablePointer<Float>) {
        let choices = router.route(u, tokens: T, logits: ws.buffer(.router, count: T * router.numExperts), workspace: ws)
        ws.routingTrace?.experts[layer] = choices.map { $0.experts.sorted() }

        let shared = ws.buffer(.shared, count: T * sharedExpert.localWidth)
        sharedExpert.forward(u, tokens: T, hidden: shared, workspace: ws, into: out)

        var input = u
        if let fc1LatentProj {
            let latent = ws.buffer(.expertInput, count: T * expertInputSize)
            MatMul.linear(u, tokens: T, fc1LatentProj, into: latent, workspace: ws)
            input = UnsafePointer(latent)
        }
        let routed = ws.buffer(.routedSum, count: T * expertInputSize)
        routed.initialize(repeating: 0, count: T * expertInputSize)
        runExperts(input, choices: choices, workspace: ws, into: routed)

        if let fc2LatentProj {
            let projected = ws.buffer(.expertOutput, count: T * max(hiddenSize, expertInputSize))
            MatMul.linear(routed, tokens: T, fc2LatentProj, into: projected, workspace: ws)
            for i in 0..<T * hiddenSize { out[i] += projected[i] }
        } else {
            for i in 0..<T * hiddenSize { out[i] += routed[i] }
        }
    }

    /// `routed[t] += w · Expert_e(input[t])` for every (token, expert) choice, expert by expert in
    /// index order (as transformers accumulates), batching each expert's tokens into one GEMM.
    private func runExperts(_ input: UnsafePointer<Float>, choices: [MoERouter.Choice], workspace ws: Workspace,
                            into routed: UnsafeMutablePointer<Float>) {
        let T = choices.count, width = expertInputSize
        var assigned = [[(token: Int, weight: Float)]](repeating: [], count: experts.count)
        for (t, choice) in choices.enumerated() {
            for (e, w) in zip(choice.experts, choice.weights) { assigned[e].append((t, w)) }
        }
        let tokens = ws.buffer(.expertTokens, count: T * width)
        let hidden = ws.buffer(.expertHidden, count: T * (experts.first?.localWidth ?? 0))
        let output = ws.buffer(.expertOutput, count: T * max(hiddenSize, width))
        for (e, rows) in assigned.enumerated() where !rows.isEmpty {
            for (i, row) in rows.enumerated() { (tokens + i * width).update(from: input + row.token * width, count: width) }
            experts[e].forward(tokens, tokens: rows.count, hidden: hidden, workspace: ws, into: output)
            for (i, row) in rows.enumerated() {
                let source = output + i * width, target = routed + row.token * width
                for j in 0..<width { target[j] += source[j] * row.weight }
            }
        }
    }
}
