import CKernels

/// How a run computes its matrix products: chosen once per run (config `compute_dtype`) and
/// owned by the model. `f32` is exact everywhere (weights, dequantized where quantized, times
/// f32 activations: what tests compare with transformers); `bf16` rounds prefill activations to
/// bf16 for the bf16 GEMM; `int8` does that and also quantizes decode activations to int8 for
/// integer dot products against int8, int4 and nvfp4 weights.
public struct ComputePolicy: Sendable, Equatable {
    public var prefill: ComputeDType

    public init(prefill: ComputeDType = .f32) { self.prefill = prefill == .auto ? .f32 : prefill }

    /// The policy for `asked` on a model whose matrices are held in `formats`.
    public static func resolving(_ asked: ComputeDType, formats: Set<WeightFormat>) -> ComputePolicy {
        guard asked == .auto else { return ComputePolicy(prefill: asked) }
        if !formats.isDisjoint(with: [.int8, .int4, .nvfp4]) { return ComputePolicy(prefill: .int8) }
        let bf16Helps = !formats.isDisjoint(with: [.bf16, .fp8]) && MatMul.bf16GEMMIsFaster
        return ComputePolicy(prefill: bf16Helps ? .bf16 : .f32)
    }

    /// Whether prefill GEMMs take both operands in bf16 (asked, and the CPU has AVX512-BF16).
    var usesBF16GEMM: Bool { prefill != .f32 && MatMul.hasBF16Dot }

    /// Whether bf16 GEMMs may run on AMX tiles where the CPU has them (on by default; `bench
    /// --compare-amx` turns it off to time the AVX512-BF16 GEMM on the same machine).
    public var allowsAMX = true

    /// Whether prefill bf16 GEMMs run on AMX tiles.
    public var usesAMX: Bool { usesBF16GEMM && allowsAMX && MatMul.hasAMX }

    private var amxClause: String {
        usesAMX ? " (prefill GEMMs and decode batches on AMX tiles)" : MatMul.hasAMX ? " (AMX present, turned off)" : ""
    }

    /// Whether decode GEMVs of int8, int4 and nvfp4 weights take int8 activations, and prefill
    /// GEMMs of int8 and int4 weights too where the CPU has AVX512-VNNI (`QuantKernels.int8GEMM`).
    public var usesInt8Activations: Bool { prefill == .int8 }

    /// The precision in effect and why, for run headers.
    public var description: String {
        switch prefill {
        case .auto, .f32: return "f32"
        case .bf16:
            return MatMul.hasBF16Dot ? "bf16" + amxClause : "f32 (bf16 asked, but this CPU lacks AVX512-BF16)"
        case .int8:
            let tiles = MatMul.hasBF16Dot ? "bf16\(amxClause))" : "f32: this CPU lacks AVX512-BF16)"
            let prefill = (ck_q8_gemm_available() != 0 ? "int8 against int8/int4 weights, else " : "") + tiles
            return "int8 (decode activations int8 per 32 against int8/int4/nvfp4 weights; prefill " + prefill
        }
    }
}

/// Precision of the activations in matrix products (config `compute_dtype`).
public enum ComputeDType: String, Sendable, CaseIterable {
    /// The fastest correct choice for the weights at hand (`ComputePolicy.resolving`): int8
    /// activations where weights are int8, int4 or nvfp4; bf16 where they are bf16 or fp8 and the
    /// bf16 GEMM outruns sgemm on widened tiles (`MatMul.bf16GEMMIsFaster`: AMX tiles, or
    /// AVX512-BF16 on AMD Zen 4/5); else f32.
    case auto
    /// Weights widened (dequantized) to f32, f32 activations: matches transformers in f32.
    case f32
    /// Prefill: activations rounded to bf16, products with f32 accumulation on AMX tiles where the
    /// CPU has them, else AVX512-BF16 dot products (as GPU engines and llama.cpp do for bf16
    /// models): about 1.5× faster prefill than f32 on AMD Zen 4, slower than f32's sgemm on Intel
    /// cores without AMX; logits differ from f32 by about 1e-2. Falls back to f32 on CPUs without
    /// AVX512-BF16.
    case bf16
    /// As bf16, and decode products against int8, int4 and nvfp4 weights take each token's
    /// activations quantized to int8 per block of 32 inputs (as llama.cpp's Q8_0 activations):
    /// integer dot products (AVX512-VNNI, else AVX2). The fastest decode for quantized weights.
    /// On AVX512-VNNI prefill against int8 and int4 weights does the same (an integer GEMM).
    case int8
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
