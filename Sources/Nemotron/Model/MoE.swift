/// Mixture-of-experts layer (`E` layers), mirroring transformers' `NemotronHMoE` (docs/architecture.md):
/// `out = Σ_e w_e · Expert_e(û) + SharedExpert(u)`, experts being relu² MLPs without gate,
/// `û = u` or, for LatentMoE, `û = fc1(u)` with `fc2` applied to the routed sum.
///
/// Tensor parallel: every rank holds a slice of every expert's intermediate width and of the
/// shared expert; router and latent projections are replicated (fc2 is linear, so applying it
/// to a partial sum is exact). One partial sum for routed + shared; the block boundary reduces it.
/// Attention data parallel: each rank holds whole experts `plan.expertRange` and everything
/// else; its own tokens meet the other ranks' experts through the expert exchange of
/// `ForwardCollectives`.
struct MoE {
    let layer: Int
    let router: MoERouter
    /// This rank's routed experts (`expertRange`), each `[Im_local, Hin]` up and `[Hin, Im_local]` down.
    let experts: [MLP]
    let expertRange: Range<Int>
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
        expertRange = plan.expertRange
        experts = try plan.expertRange.map { e in
            try MLP(
                checkpoint: checkpoint, upName: name(WeightNames.MoE.expertUpProj(e)),
                downName: name(WeightNames.MoE.expertDownProj(e)),
                inputSize: c.expertInputSize, width: c.moeFFNSize, range: plan.moeFFNRange)
        }
        sharedExpert = try MLP(
            checkpoint: checkpoint, upName: name(WeightNames.MoE.sharedUpProj),
            downName: name(WeightNames.MoE.sharedDownProj),
            inputSize: c.hiddenSize, width: c.sharedExpertFFNSize, range: plan.sharedFFNRange)
        if let latent = c.moeLatentSize {
            fc1LatentProj = try checkpoint.linear(name(WeightNames.MoE.fc1LatentProj), rows: latent, cols: c.hiddenSize)
            fc2LatentProj = try checkpoint.linear(name(WeightNames.MoE.fc2LatentProj), rows: c.hiddenSize, cols: latent)
        } else {
            fc1LatentProj = nil
            fc2LatentProj = nil
        }
    }

    /// u `[T, H]` normed input → out `[T, H]` partial sum over ranks (complete under attention
    /// data parallelism, where experts are exchanged instead).
    func forward(_ u: UnsafePointer<Float>, tokens T: Int, pass: ForwardPass, into out: UnsafeMutablePointer<Float>) {
        let ws = pass.workspace
        let kernels = pass.kernels
        let choices = router.route(u, tokens: T, logits: ws.buffer(.router, count: T * router.numExperts), kernels)
        ws.routingTrace?.experts[layer] = choices.map { $0.experts.sorted() }

        // Decode: the shared expert joins the routed experts' grouped products (runExperts).
        let sharedJoins = T <= MatMul.streamingMaxTokens && !pass.collectives.exchangesExperts
        if !sharedJoins {
            let shared = ws.buffer(.sharedExpertHidden, count: T * sharedExpert.localWidth)
            sharedExpert.forward(u, tokens: T, hidden: shared, kernels, into: out)
        }

        var input = u
        if let fc1LatentProj {
            let latent = ws.buffer(.expertInput, count: T * expertInputSize)
            MatMul.linear(u, tokens: T, fc1LatentProj, into: latent, kernels)
            input = UnsafePointer(latent)
        }
        let routed = ws.buffer(.routedSum, count: T * expertInputSize)
        if pass.collectives.exchangesExperts {
            routeAcrossRanks(input, choices: choices, pass: pass, into: routed)
        } else {
            routed.initialize(repeating: 0, count: T * expertInputSize)
            runExperts(input, choices: choices, kernels, shared: sharedJoins ? (u, out) : nil, into: routed)
        }

        if let fc2LatentProj {
            let projected = ws.buffer(.expertOutput, count: T * max(hiddenSize, expertInputSize))
            MatMul.linear(routed, tokens: T, fc2LatentProj, into: projected, kernels)
            for i in 0..<T * hiddenSize { out[i] += projected[i] }
        } else {
            for i in 0..<T * hiddenSize { out[i] += routed[i] }
        }
    }

    /// Expert parallelism: all ranks' inputs and choices are gathered, this rank's experts run
    /// on every token routed to them, and each rank gets back its rows summed over the ranks.
    private func routeAcrossRanks(
        _ input: UnsafePointer<Float>, choices: [MoERouter.Choice], pass: ForwardPass,
        into routed: UnsafeMutablePointer<Float>
    ) {
        let width = expertInputSize
        let k = router.expertsPerToken
        let ws = pass.workspace
        let exchange = pass.collectives
        let counts = exchange.expertTokenCounts(choices.count)
        let total = counts.reduce(0, +)
        let allInput = ws.buffer(.gatheredTokens, count: total * width)
        exchange.gatherExpertInputs(input, width: width, counts: counts, into: allInput)
        // Routing travels as floats: [expert ids (exact below 2^24) | weights] per token.
        var mine = choices.flatMap { $0.experts.map(Float.init) + $0.weights }
        let allRouting = ws.buffer(.gatheredRouting, count: total * 2 * k)
        mine.withUnsafeMutableBufferPointer {
            exchange.gatherExpertInputs($0.baseAddress!, width: 2 * k, counts: counts, into: allRouting)
        }
        let allChoices = (0..<total).map { t in
            MoERouter.Choice(
                experts: (0..<k).map { Int(allRouting[t * 2 * k + $0]) },
                weights: (0..<k).map { allRouting[t * 2 * k + k + $0] })
        }
        let allRouted = ws.buffer(.gatheredRouted, count: total * width)
        allRouted.initialize(repeating: 0, count: total * width)
        runExperts(allInput, choices: allChoices, pass.kernels, into: allRouted)
        exchange.scatterExpertOutputs(allRouted, width: width, counts: counts, into: routed)
    }

    /// `routed[t] += w · Expert_e(input[t])` for every (token, expert) choice, expert by expert in
    /// index order (as transformers accumulates), each expert's tokens batched into one product.
    /// Few tokens (decode): every chosen expert's rows get their own scratch, so all the up
    /// projections run as one group of products, then all the down projections (one parallel
    /// dispatch each, `StreamingProducts`), with the shared expert (`shared`: its input `[T, H]` and
    /// the output `[T, H]` it writes) in the same groups. Many tokens: expert after expert.
    private func runExperts(
        _ input: UnsafePointer<Float>, choices: [MoERouter.Choice], _ kernels: KernelContext,
        shared: (input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>)? = nil,
        into routed: UnsafeMutablePointer<Float>
    ) {
        let T = choices.count
        let width = expertInputSize
        let ws = kernels.workspace
        var assigned = [[(token: Int, weight: Float)]](repeating: [], count: experts.count)
        for (t, choice) in choices.enumerated() {
            for (e, w) in zip(choice.experts, choice.weights) where expertRange.contains(e) {
                assigned[e - expertRange.lowerBound].append((t, w))
            }
        }
        let active = assigned.indices.filter { !assigned[$0].isEmpty }
        let grouped = T <= MatMul.streamingMaxTokens
        // Scratch rows per expert: its own place when grouped, the same place otherwise.
        var offsets: [Int] = []
        var rowsNeeded = 0
        for e in active {
            offsets.append(grouped ? rowsNeeded : 0)
            rowsNeeded = grouped ? rowsNeeded + assigned[e].count : max(rowsNeeded, assigned[e].count)
        }
        let Im = experts.first?.localWidth ?? 0
        let tokens = ws.buffer(.expertTokens, count: rowsNeeded * width)
        let hidden = ws.buffer(.expertHidden, count: rowsNeeded * Im)
        let output = ws.buffer(.expertOutput, count: rowsNeeded * max(hiddenSize, width))
        // Expert e's products, its tokens gathered at `offset` of the scratch first. An expert that
        // every token chose (always so in single-token decode) reads the input in place: no copy,
        // and the block boundary's int8 packages of it are reused.
        func products(_ e: Int, at offset: Int) -> (up: Product, down: Product) {
            let rows = assigned[e]
            var x = input
            if rows.count < T {
                for (i, row) in rows.enumerated() {
                    (tokens + (offset + i) * width).update(from: input + row.token * width, count: width)
                }
                x = UnsafePointer(tokens + offset * width)
            }
            return (
                Product(x: x, tokens: rows.count, w: experts[e].upProj, y: hidden + offset * Im),
                Product(x: hidden + offset * Im, tokens: rows.count, w: experts[e].downProj, y: output + offset * width)
            )
        }
        if grouped {
            let pairs = zip(active, offsets).map { products($0, at: $1) }
            var ups = pairs.map(\.up)
            var downs = pairs.map(\.down)
            if let shared {
                let sharedHidden = ws.buffer(.sharedExpertHidden, count: T * sharedExpert.localWidth)
                ups.append(Product(x: shared.input, tokens: T, w: sharedExpert.upProj, y: sharedHidden))
                downs.append(Product(x: sharedHidden, tokens: T, w: sharedExpert.downProj, y: shared.output))
            }
            MatMul.linear(ups, kernels)
            for p in ups { Activation.relu2(p.y, count: p.tokens * p.w.rows, pool: kernels.pool) }
            MatMul.linear(downs, kernels)
            for (i, e) in active.enumerated() { accumulate(output + offsets[i] * width, assigned[e], into: routed) }
        } else {
            precondition(shared == nil, "the shared expert joins only grouped (decode) products")
            for e in active {
                let (up, down) = products(e, at: 0)
                MatMul.linear(up.x, tokens: up.tokens, up.w, into: up.y, kernels)
                Activation.relu2(up.y, count: up.tokens * Im, pool: kernels.pool)
                MatMul.linear(down.x, tokens: down.tokens, down.w, into: down.y, kernels)
                accumulate(output, assigned[e], into: routed)
            }
        }
    }

    /// `routed[row.token] += row.weight · outputs[i]` for the i-th of an expert's rows `[n, Hin]`.
    private func accumulate(
        _ outputs: UnsafePointer<Float>, _ rows: [(token: Int, weight: Float)], into routed: UnsafeMutablePointer<Float>
    ) {
        let width = expertInputSize
        for (i, row) in rows.enumerated() {
            let source = outputs + i * width
            let target = routed + row.token * width
            for j in 0..<width { target[j] += source[j] * row.weight }
        }
    }
}
