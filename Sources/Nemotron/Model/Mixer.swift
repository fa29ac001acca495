/// The mixer of one block: a closed set, one case per `LayerKind`. Every mixer returns its
/// rank's partial sum and never calls a collective; the block boundary reduces.
enum Mixer {
    case mamba(Mamba2Mixer)
    case attention(Attention)
    case mlp(MLP)
    case moe(MoE)

    init(kind: LayerKind, layer: Int, config: ModelConfig, plan: ShardPlan, checkpoint: Checkpoint) throws {
        switch kind {
        case .mamba: self = .mamba(try Mamba2Mixer(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        case .attention: self = .attention(try Attention(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        case .mlp: self = .mlp(try MLP(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        case .moe: self = .moe(try MoE(layer: layer, config: config, plan: plan, checkpoint: checkpoint))
        }
    }

    func makeState(capacity: Int) -> LayerState {
        switch self {
        case .mamba(let mixer): return .mamba(mixer.makeState())
        case .attention(let mixer): return .attention(mixer.makeState(capacity: capacity))
        case .mlp, .moe: return .stateless
        }
    }

    /// u `[T, H]` normed input → out `[T, H]` partial sum over ranks. `reduceStatistics` sums a
    /// small buffer of normalisation statistics over the ranks (Mamba with replicated groups).
    func forward(_ u: UnsafePointer<Float>, tokens: Int, state: LayerState, workspace: Workspace,
                 reduceStatistics: (UnsafeMutablePointer<Float>, Int) -> Void, into out: UnsafeMutablePointer<Float>) {
        switch (self, state) {
        case (.mamba(let mixer), .mamba(let state)):
            mixer.forward(u, tokens: tokens, state: state, workspace: workspace, reduceStatistics: reduceStatistics, into: out)
        case (.attention(let mixer), .attention(let cache)):
            mixer.forward(u, tokens: tokens, cache: cache, workspace: workspace, into: out)
        case (.mlp(let mixer), .stateless):
            mixer.forward(u, tokens: tokens, hidden: workspace.buffer(.projection, count: tokens * mixer.localWidth),
                          workspace: workspace, into: out)
        case (.moe(let mixer), .stateless):
            mixer.forward(u, tokens: tokens, workspace: workspace, into: out)
        default:
            preconditionFailure("layer state does not match its mixer")
        }
    }
}
