import CKernels
import Testing

@testable import Nemotron

/// One token of the selective scan: the AVX-512 kernel (`ck_ssm_step`) against the Swift
/// update it replaces on AVX-512 CPUs (`SSM.update`, the naive twin), state and outputs.
@Suite("SSM step")
struct SSMTests {
    @Test(
        "ck_ssm_step equals SSM.update over several tokens, whole and partial groups of 16 and of 4 rows",
        arguments: [(64, 32), (20, 128), (18, 32), (64, 128)])
    func step(rows P: Int, state N: Int) {
        guard SSM.hasStepKernel(stateSize: N) else { return }
        var random = Xoshiro256(seed: UInt64(P * N))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float(random.nextUnit()) * 2 - 1 } }
        var kernelState = values(P * N)
        var swiftState = kernelState
        for _ in 0..<5 {
            let (x, B, C) = (values(P), values(N), values(N))
            let (decay, dt, D) = (Float(0.9), Float(0.3), Float(0.5))
            var y = [Float](repeating: .nan, count: P)
            ck_ssm_step(&kernelState, P, N, decay, dt, x, B, C, D, &y)
            let expected = swiftState.withUnsafeMutableBufferPointer { S in
                (0..<P).map { p in
                    SSM.update(S.baseAddress! + p * N, decay: decay, input: dt * x[p], B: B, C: C, count: N) + D * x[p]
                }
            }
            for p in 0..<P { #expect(abs(y[p] - expected[p]) <= 1e-5 * max(1, abs(expected[p]))) }
            for i in 0..<P * N { #expect(abs(kernelState[i] - swiftState[i]) <= 1e-6 * max(1, abs(swiftState[i]))) }
        }
    }
}
