import Foundation

/// Scalar activations used by the mixers (docs/architecture.md).
enum Activation {
    /// `x · sigmoid(x)`
    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + expf(-x)) }

    /// `1 / (1 + e^{-x})`
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// The kernels' softplus: `x` above 20, else `log(1 + e^x)` (mamba_ssm / torch threshold).
    @inline(__always) static func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

    /// `relu(x)²`, the Nemotron-H MLP and expert activation.
    @inline(__always) static func relu2(_ x: Float) -> Float {
        let r = max(x, 0)
        return r * r
    }

    /// `relu2` in place over `count` values, split over `pool`'s threads in prefill (`[T, I]`
    /// hidden rows: single-threaded it was a serial stretch between two parallel GEMMs).
    static func relu2(_ x: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
        let shared = UncheckedSendable(x)
        pool.forRanges(count, alignment: 16, minimumPerThread: 1 << 14) { range in
            let x = shared.value
            for i in range { x[i] = relu2(x[i]) }
        }
    }
}
