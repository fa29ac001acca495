import COpenBLAS

/// Scratch buffers for one rank's forward passes, one per purpose. A buffer grows only when a
/// longer batch than any before arrives (the first prefill); decode steps reuse them and
/// allocate nothing. Also carries the intra-rank thread count.
public final class Workspace {
    /// What each buffer holds; shapes are per rank (`local` sizes from the ShardPlan).
    enum Slot: CaseIterable {
        case hidden        // [T, H] mixer output (partial sum across ranks)
        case residual      // [T, H] residual stream
        case normed        // [T, H] normed input of the current mixer
        case lastRows      // [sequences, H] each sequence's last normed row
        case logits        // [rows, V_local] LM-head output
        case gatheredLogits // [rows, V] on rank 0
        case weightTile    // widened weight tile for prefill GEMMs
        case preparedInput // [T, in] activations in the order the bf16 streaming kernel reads
        case bf16Input     // [T, in] activations rounded to bf16 for the bf16 GEMM
        case gemmScratch   // per-thread packed weight panels of the bf16 GEMM
        case projection    // Mamba in_proj output [T, Dp_local]; attention q [T, hq_local·dh]; MLP up
        case convOut       // Mamba [T, Dc_local] conv + SiLU output
        case groupStatistics // Mamba [T, G] per-group sums of squares when groups are replicated
        case scan          // Mamba [T, Di_local] SSM output; attention [T, hq_local·dh] output
        case keys          // attention [T, hkv_local·dh]
        case values        // attention [T, hkv_local·dh]
        case scores        // attention [heads, context] softmax rows (decode)
        case attentionScores // attention [rows, context] one head's scores (prefill GEMM path)
        case router        // MoE [T, E] router scores
        case expertInput   // MoE [T, Hin] routed input (latent when LatentMoE)
        case expertTokens  // MoE [T, Hin] tokens gathered for one expert
        case expertHidden  // MoE [T, Im_local]
        case expertOutput  // MoE [T, Hin]
        case routedSum     // MoE [T, Hin]
        case shared        // MoE shared expert [T, Is_local]
        case gatheredTokens  // MoE, attention DP: [ΣT, Hin] every rank's routed inputs
        case gatheredRouting // MoE, attention DP: [ΣT, 2k] every rank's expert ids and weights
        case gatheredRouted  // MoE, attention DP: [ΣT, Hin] this rank's experts' outputs
    }

    public let pool: ThreadPool
    public var threads: Int { pool.threads }
    private var buffers: [Slot: (pointer: UnsafeMutablePointer<Float>, count: Int)] = [:]
    /// Precision of prefill GEMMs against bf16 weights (see `ComputeDType`).
    public var computeDType: ComputeDType = .f32
    /// When set, MoE layers record their expert choices here (tests compare them with transformers).
    public var routingTrace: RoutingTrace?

    public init(threads: Int) {
        pool = ThreadPool(threads: threads)
        openblas_set_num_threads(Int32(pool.threads))
    }

    deinit {
        for (_, buffer) in buffers { buffer.pointer.deallocate() }
    }

    /// A buffer of at least `count` floats for `slot`; contents are unspecified.
    func buffer(_ slot: Slot, count: Int) -> UnsafeMutablePointer<Float> {
        if let existing = buffers[slot], existing.count >= count { return existing.pointer }
        buffers[slot]?.pointer.deallocate()
        let capacity = max(count, 16)
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
        buffers[slot] = (pointer, capacity)
        return pointer
    }
}

/// How prefill matrix products with bf16 weights are computed. Decode reads each weight once
/// and is bound by memory bandwidth, so it always accumulates exact f32 products.
public enum ComputeDType: String, Sendable, CaseIterable {
    /// Weights widened to f32, f32 activations, OpenBLAS sgemm: matches transformers in f32.
    case f32
    /// Activations rounded to bf16, AVX512-BF16 dot products with f32 accumulation (as GPU
    /// engines and llama.cpp do for bf16 models): about 1.5× faster prefill, logits differ
    /// from f32 by about 1e-2. Falls back to f32 on CPUs without AVX512-BF16.
    case bf16
}

/// Expert ids chosen per MoE layer: `experts[layer][token]` sorted ascending.
public final class RoutingTrace {
    public var experts: [Int: [[Int]]] = [:]
    public init() {}
}
