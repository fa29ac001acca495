/// How a run computes its matrix products: chosen once per run (config `compute_dtype`) and
/// owned by the model. Decode reads each weight once and is bound by memory bandwidth, so it
/// always accumulates exact f32 products; the policy decides prefill.
public struct ComputePolicy: Sendable, Equatable {
    public var prefill: ComputeDType

    public init(prefill: ComputeDType = .f32) { self.prefill = prefill == .auto ? .f32 : prefill }

    /// The policy for `asked` on a checkpoint whose weight bytes are mostly `predominant`.
    public static func resolving(_ asked: ComputeDType, predominant: ElementType?) -> ComputePolicy {
        guard asked == .auto else { return ComputePolicy(prefill: asked) }
        return ComputePolicy(prefill: predominant == .bf16 && MatMul.hasBF16Dot ? .bf16 : .f32)
    }

    /// The prefill precision in effect and why, for run headers.
    public var description: String {
        if prefill == .bf16 && !MatMul.hasBF16Dot { return "f32 (bf16 asked, but this CPU lacks AVX512-BF16)" }
        return prefill.rawValue
    }
}

/// Precision of prefill products against bf16 weights (config `compute_dtype`).
public enum ComputeDType: String, Sendable, CaseIterable {
    /// bf16 where the weights are mostly bf16 and the CPU has native bf16 dot products
    /// (AVX512-BF16), else f32: the fastest path that is correct for the checkpoint at hand.
    case auto
    /// Weights widened to f32, f32 activations, OpenBLAS sgemm: matches transformers in f32.
    case f32
    /// Activations rounded to bf16, AVX512-BF16 dot products with f32 accumulation (as GPU
    /// engines and llama.cpp do for bf16 models): about 1.5× faster prefill, logits differ
    /// from f32 by about 1e-2. Falls back to f32 on CPUs without AVX512-BF16.
    case bf16
}

/// What a kernel runs with: this rank's scratch buffers and threads, and the compute policy.
public struct KernelContext {
    public let workspace: Workspace
    public let policy: ComputePolicy

    public init(workspace: Workspace, policy: ComputePolicy = ComputePolicy()) {
        self.workspace = workspace
        self.policy = policy
    }

    var pool: ThreadPool { workspace.pool }
}
