/// The mixer of one block: a closed set, one case per `LayerKind`. Every mixer returns its
/// rank's partial sum, which the block boundary reduces. The only collectives a mixer issues
/// are the named ones of `ForwardCollectives` (Mamba's replicated-group statistics, MoE's
/// expert exchange under attention data parallelism).
enum Mixer {
    case mamba(Mamba2Mixer)
    case attention(Attention)
    case mlp(MLP)
    case moe(MoE)

    init(kind: LayerKind, layer: Int, config: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        switch kind {
        case .mamba: self = .mamba(try Mamba2Mixer(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        case .attention:
            self = .attention(try Attention(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        case .mlp: self = .mlp(try MLP(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        case .moe: self = .moe(try MoE(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        }
    }

    /// Bytes of this rank's weight matrices: those every token reads, and the routed experts'
    /// (of which a token reads only the `k` chosen).
    var matrixBytes: (dense: Int, experts: Int) {
        func mlp(_ m: MLP) -> Int { m.upProj.byteCount + m.downProj.byteCount }
        switch self {
        case .mamba(let m): return (m.inProj.byteCount + m.outProj.byteCount, 0)
        case .attention(let a):
            return (a.qProj.byteCount + a.kProj.byteCount + a.vProj.byteCount + a.oProj.byteCount, 0)
        case .mlp(let m): return (mlp(m), 0)
        case .moe(let m):
            let latent = (m.fc1LatentProj?.byteCount ?? 0) + (m.fc2LatentProj?.byteCount ?? 0)
            return (m.router.gate.byteCount + mlp(m.sharedExpert) + latent, m.experts.reduce(0) { $0 + mlp($1) })
        }
    }

    /// This rank's weight matrices by checkpoint leaf (`in_proj`, `experts.3.up_proj`, …), in
    /// checkpoint order.
    var matrices: [(name: String, matrix: WeightMatrix)] {
        func mlp(_ m: MLP, _ prefix: String) -> [(String, WeightMatrix)] {
            [(prefix + "up_proj", m.upProj), (prefix + "down_proj", m.downProj)]
        }
        switch self {
        case .mamba(let m): return [("in_proj", m.inProj), ("out_proj", m.outProj)]
        case .attention(let a):
            return [("q_proj", a.qProj), ("k_proj", a.kProj), ("v_proj", a.vProj), ("o_proj", a.oProj)]
        case .mlp(let m): return mlp(m, "")
        case .moe(let m):
            var all: [(String, WeightMatrix)] = [("gate", m.router.gate)]
            all += [("fc1_latent_proj", m.fc1LatentProj), ("fc2_latent_proj", m.fc2LatentProj)].compactMap { name, w in
                w.map { (name, $0) }
            }
            for (e, expert) in zip(m.expertRange, m.experts) { all += mlp(expert, "experts.\(e).") }
            return all + mlp(m.sharedExpert, "shared_experts.")
        }
    }

    func makeState(capacity: Int) -> LayerState {
        switch self {
        case .mamba(let mixer): return .mamba(mixer.makeState())
        case .attention(let mixer): return .attention(mixer.makeState(capacity: capacity))
        case .mlp, .moe: return .stateless
        }
    }

    /// u `[T, H]` normed input, the rows of every sequence in the batch (`segments`, each with
    /// this layer's state of its sequence) → out `[T, H]` partial sum over ranks.
    func forward(
        _ u: UnsafePointer<Float>, segments: [Segment<LayerState>], pass: ForwardPass,
        into out: UnsafeMutablePointer<Float>
    ) {
        let tokens = segments.last?.rows.upperBound ?? 0
        switch self {
        case .mamba(let mixer):
            let states = segments.map { segment -> Segment<MambaState> in
                guard case .mamba(let state) = segment.state else {
                    preconditionFailure("layer state does not match its mixer")
                }
                return Segment(rows: segment.rows, state: state)
            }
            mixer.forward(u, segments: states, pass: pass, into: out)
        case .attention(let mixer):
            let caches = segments.map { segment -> Segment<KVCache> in
                guard case .attention(let cache) = segment.state else {
                    preconditionFailure("layer state does not match its mixer")
                }
                return Segment(rows: segment.rows, state: cache)
            }
            mixer.forward(u, segments: caches, pass: pass, into: out)
        case .mlp(let mixer):
            mixer.forward(
                u, tokens: tokens, hidden: pass.workspace.buffer(.mlpHidden, count: tokens * mixer.localWidth),
                pass.kernels, into: out)
        case .moe(let mixer):
            mixer.forward(u, tokens: tokens, pass: pass, into: out)
        }
    }
}

/// The rows of one sequence within a batch's `[T, H]` activations, with that sequence's state.
struct Segment<State> {
    let rows: Range<Int>
    let state: State
}
