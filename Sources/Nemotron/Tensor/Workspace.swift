import COpenBLAS

/// Scratch buffers for one rank's forward passes, one per purpose, and the rank's thread pool.
/// A buffer grows only when a longer batch or context than any before arrives (the first
/// prefill, or the first decode step of a sequence, whose attention scores are sized by its KV
/// cache capacity); later decode steps reuse them and allocate nothing.
public final class Workspace {
    /// What each buffer holds; shapes are per rank (`local` sizes from the ShardPlan).
    enum Slot: CaseIterable {
        case mixerOutput  // [T, H] the current mixer's output (this rank's partial sum)
        case residual  // [T, H] residual stream
        case normed  // [T, H] normed input of the current mixer
        case lastRows  // [sequences, H] each sequence's last normed row
        case logits  // [rows, V_local] LM-head output
        case gatheredLogits  // [rows, V] on rank 0, as gathered: [rank][row][V_rank]
        case orderedLogits  // [rows, V] on rank 0, row-major: what a forward pass returns
        case weightTile  // [threads, block rows, in] each thread's widened weight rows for sgemm
        case bf16WeightTile  // a dequantized weight tile rounded to bf16 for the bf16 GEMM
        case bf16Input  // [T, in] activations rounded to bf16 for the bf16 GEMM
        case streamingInputs  // the prepared inputs of a group of streaming products (StreamingProducts)
        case quantizedNormed  // T packages of the normed rows, written by the fused block boundary
        case gemmScratch  // per-thread packed weight panels of the bf16 and int8 GEMMs
        case quantizedGEMMInput  // [T, in] activations quantized to int8 for the int8 prefill GEMM
        case mambaProjection  // Mamba in_proj output [T, Dp_local]
        case convOutput  // Mamba [T, Dc_local] conv + SiLU output
        case groupStatistics  // Mamba [T, G] per-group sums of squares when groups are replicated
        case ssmOutput  // Mamba [T, Di_local] SSM output, gated and normed in place
        case queries  // attention [T, hq_local·dh]
        case keys  // attention [T, hkv_local·dh]
        case values  // attention [T, hkv_local·dh]
        case attentionOutput  // attention [T, hq_local·dh]
        case decodeScores  // attention [hq_local, capacity] softmax rows of one-token segments
        case promptScores  // attention [threads, 64, context] each thread's block of one head's scores
        case mlpHidden  // MLP [T, I_local] relu² hidden
        case router  // MoE [T, E] router scores
        case expertInput  // MoE [T, Hin] routed input (latent when LatentMoE)
        case expertTokens  // MoE [T, Hin] tokens gathered for one expert
        case expertHidden  // MoE [T, Im_local]
        case expertOutput  // MoE [T, Hin]
        case routedSum  // MoE [T, Hin]
        case sharedExpertHidden  // MoE shared expert [T, Is_local]
        case gatheredTokens  // MoE, attention DP: [ΣT, Hin] every rank's routed inputs
        case gatheredRouting  // MoE, attention DP: [ΣT, 2k] every rank's expert ids and weights
        case gatheredRouted  // MoE, attention DP: [ΣT, Hin] this rank's experts' outputs
    }

    public let pool: ThreadPool
    public var threads: Int { pool.threads }
    private var buffers: [Slot: (pointer: UnsafeMutablePointer<Float>, count: Int)] = [:]
    /// How many times a buffer was (re)allocated: steady decode adds none.
    public private(set) var allocations = 0
    /// The normed rows of the current block already quantized to int8 by the fused block
    /// boundary, for its int8 GEMVs to reuse; nil when there are none (`NemotronH.forward`
    /// clears it before every boundary rewrites the normed rows).
    var quantizedRows: QuantizedRows?
    /// How many int8 products took `quantizedRows` instead of quantizing their input again.
    public internal(set) var reusedQuantizedRows = 0
    /// When set, MoE layers record their expert choices here (tests compare them with transformers).
    public var routingTrace: RoutingTrace?

    public init(threads: Int) {
        pool = ThreadPool(threads: threads)
        // Each BLAS call runs on the calling thread: the kernels split products over the pool and
        // call OpenBLAS from every part. Its own threads, once woken by a product, spun beside the
        // pool's during the decode that followed (0.74 B decode at 1 × 16 on the 16-core host:
        // 55.8, then 29 tokens/s after an f32 prefill).
        openblas_set_num_threads(1)
    }

    deinit {
        for (_, buffer) in buffers { buffer.pointer.deallocate() }
    }

    /// At least `bytes` bytes for `slot`, starting on a 64-byte boundary (for the C kernels'
    /// vector loads); contents are unspecified.
    func alignedBytes(_ slot: Slot, count bytes: Int) -> UnsafeMutableRawPointer {
        // 64 spare bytes so the start can move up to the boundary.
        let raw = UnsafeMutableRawPointer(buffer(slot, count: (bytes + 64) / 4 + 1))
        return raw + (64 - Int(bitPattern: raw) % 64) % 64
    }

    /// A buffer of at least `count` floats for `slot`; contents are unspecified.
    func buffer(_ slot: Slot, count: Int) -> UnsafeMutablePointer<Float> {
        if let existing = buffers[slot], existing.count >= count { return existing.pointer }
        buffers[slot]?.pointer.deallocate()
        let capacity = max(count, 16)
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
        buffers[slot] = (pointer, capacity)
        allocations += 1
        return pointer
    }
}

/// Expert ids chosen per MoE layer: `experts[layer][token]` sorted ascending.
public final class RoutingTrace {
    public var experts: [Int: [[Int]]] = [:]
    public init() {}
}
