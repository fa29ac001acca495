/// Every checkpoint key nemotron-run reads, in one table (Hugging Face layout, `backbone.` root).
/// A grep for any weight name lands here.
public enum WeightNames {
    /// Root of the language model's tensors (all but the LM head).
    public static let backbone = "backbone."
    public static let embeddings = "backbone.embeddings.weight"
    public static let normF = "backbone.norm_f.weight"
    public static let lmHead = "lm_head.weight"

    /// Names some checkpoints use for a tensor, accepted (by `Checkpoint`) when the canonical one is
    /// absent: transformers-5 re-saves from before its PR #48075 spell the embedding singular.
    public static let alternates = [embeddings: ["backbone.embedding.weight"]]

    /// Root of the multi-token-prediction heads (`mtp.layers.{i}.*`), which plain decoding does not use.
    public static let mtp = "mtp."

    /// `backbone.layers.{layer}.{leaf}`
    public static func layer(_ layer: Int, _ leaf: String) -> String { "backbone.layers.\(layer).\(leaf)" }

    /// Pre-mixer RMSNorm of every block.
    public static let norm = "norm.weight"

    public enum Mamba {
        public static let inProj = "mixer.in_proj.weight"
        public static let conv1dWeight = "mixer.conv1d.weight"
        public static let conv1dBias = "mixer.conv1d.bias"
        public static let dtBias = "mixer.dt_bias"
        public static let aLog = "mixer.A_log"
        public static let d = "mixer.D"
        public static let norm = "mixer.norm.weight"
        public static let outProj = "mixer.out_proj.weight"
    }

    public enum Attention {
        public static let qProj = "mixer.q_proj.weight"
        public static let kProj = "mixer.k_proj.weight"
        public static let vProj = "mixer.v_proj.weight"
        public static let oProj = "mixer.o_proj.weight"
        /// ModelOpt's FP8 KV-cache scales (F32 scalars), read and not used.
        public static let kScale = "mixer.k_proj.k_scale"
        public static let vScale = "mixer.v_proj.v_scale"
    }

    public enum MLP {
        public static let upProj = "mixer.up_proj.weight"
        public static let downProj = "mixer.down_proj.weight"
    }

    public enum MoE {
        public static let gate = "mixer.gate.weight"
        /// A buffer in transformers, not a parameter.
        public static let eScoreCorrectionBias = "mixer.gate.e_score_correction_bias"
        public static func expertUpProj(_ expert: Int) -> String { "mixer.experts.\(expert).up_proj.weight" }
        public static func expertDownProj(_ expert: Int) -> String { "mixer.experts.\(expert).down_proj.weight" }
        public static let sharedUpProj = "mixer.shared_experts.up_proj.weight"
        public static let sharedDownProj = "mixer.shared_experts.down_proj.weight"
        public static let fc1LatentProj = "mixer.fc1_latent_proj.weight"
        public static let fc2LatentProj = "mixer.fc2_latent_proj.weight"
    }

    /// Whether `name` (prefix taken off) is the weight of a linear layer: every matrix the
    /// mixers multiply by, experts and latent projections included, and the LM head. These are
    /// what quantization applies to; the embedding, norms, conv filters and the router are not.
    public static func isLinear(_ name: String) -> Bool {
        if name == lmHead { return true }
        let root = "backbone.layers."
        guard name.hasPrefix(root) else { return false }
        let rest = name.dropFirst(root.count)
        guard let dot = rest.firstIndex(of: "."), Int(rest[..<dot]) != nil else { return false }
        let leaf = String(rest[rest.index(after: dot)...])
        let fixed = [
            Mamba.inProj, Mamba.outProj, Attention.qProj, Attention.kProj, Attention.vProj, Attention.oProj,
            MLP.upProj, MLP.downProj, MoE.sharedUpProj, MoE.sharedDownProj, MoE.fc1LatentProj, MoE.fc2LatentProj,
        ]
        if fixed.contains(leaf) { return true }
        let parts = leaf.split(separator: ".")
        return parts.count == 5 && parts[0] == "mixer" && parts[1] == "experts" && Int(parts[2]) != nil
            && (parts[3] == "up_proj" || parts[3] == "down_proj") && parts[4] == "weight"
    }
}
