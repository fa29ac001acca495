import ArgumentParser
import Foundation
import Nemotron
import NemotronMPI

extension NemotronRun {
    struct BenchAllReduce: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-allreduce",
            abstract: "Time the block-boundary reduction for every strategy, fused and unfused (run under mpirun).")

        @Option(name: .long, parsing: .upToNextOption, help: "Token counts T to time.")
        var tokens: [Int] = [1, 8, 64, 512]

        @Option(name: .long, parsing: .upToNextOption, help: "Hidden sizes H to time.")
        var hidden: [Int] = [2048, 4096]

        @Option(name: .long, help: "Timed calls per case (median reported); large messages use a quarter.")
        var iterations = 200

        @Flag(name: .long, help: "Print one JSON object per case, one per line.")
        var json = false

        struct Case {
            let tokens: Int
            let hidden: Int
            let strategy: AllReduceStrategy
            let fused: Bool
            var seconds: Double = 0
        }

        func run() throws {
            let world = MPICommunicator.world
            let strategies = AllReduceStrategy.allCases.filter {
                $0 != .auto && (world.isSingleNode || !$0.needsSharedMemory)
            }
            var results: [Case] = []
            for T in tokens {
                for H in hidden {
                    for strategy in strategies {
                        try world.use(strategy)
                        for fused in [false, true] {
                            var item = Case(tokens: T, hidden: H, strategy: strategy, fused: fused)
                            item.seconds = time(item, world: world)
                            results.append(item)
                        }
                    }
                }
            }
            report(results, ranks: world.size)
        }

        /// Median seconds of one boundary: fused = one collective with the add + norm epilogue;
        /// unfused = the collective, then the residual add and the norm as separate passes.
        private func time(_ item: Case, world: MPICommunicator) -> Double {
            let count = item.tokens * item.hidden
            let pristine = (0..<count).map { Float(($0 * 7 + world.rank * 13) % 101) / 101 - 0.5 }
            var partial = pristine
            var residual = pristine
            var normed = [Float](repeating: 0, count: count)
            let weight = [Float](repeating: 1, count: item.hidden)
            let calls = count >= 1 << 18 ? max(5, iterations / 4) : iterations
            var samples: [Double] = []
            for call in 0..<(calls + 5) {
                partial.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: pristine, count: count) }
                world.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                partial.withUnsafeMutableBufferPointer { p in
                    residual.withUnsafeMutableBufferPointer { r in
                        normed.withUnsafeMutableBufferPointer { n in
                            if item.fused {
                                world.allReduceAddNorm(
                                    p.baseAddress!, residual: r.baseAddress!, weight: weight, eps: 1e-5,
                                    rows: item.tokens, width: item.hidden, into: n.baseAddress!, quantized: nil)
                            } else {
                                world.allReduceSum(p.baseAddress!, count: count)
                                ResidualNorm.addThenNormInTwoPasses(
                                    p.baseAddress!, residual: r.baseAddress!, weight: weight, eps: 1e-5,
                                    rows: item.tokens, width: item.hidden, into: n.baseAddress!)
                            }
                        }
                    }
                }
                if call >= 5 { samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            // Every rank must agree on the figure: take the slowest rank's median.
            let median = samples.sorted()[samples.count / 2]
            return Double(world.allReduceMax(Int(median * 1e9))) / 1e9
        }

        private func report(_ results: [Case], ranks: Int) {
            func baseline(_ c: Case) -> Double {
                results.first { $0.tokens == c.tokens && $0.hidden == c.hidden && $0.strategy == .mpi && !$0.fused }!
                    .seconds
            }
            if json {
                for c in results {
                    say(
                        (try? Report.json([
                            "ranks": ranks, "tokens": c.tokens, "hidden": c.hidden, "strategy": c.strategy.rawValue,
                            "fused": c.fused,
                            "median_microseconds": c.seconds * 1e6,
                            "gb_per_second": Double(c.tokens * c.hidden * 4) / c.seconds / 1e9,
                            "speedup_over_unfused_mpi": baseline(c) / c.seconds,
                        ])) ?? "")
                }
                return
            }
            var lines = [
                "bench-allreduce: \(ranks) ranks; median µs per block boundary (reduction + residual add + RMSNorm); "
                    + "GB/s of the [T, H] fp32 partial; × = speed-up over unfused mpi",
                "    T      H  strategy   unfused µs    GB/s      ×     fused µs    GB/s      ×",
            ]
            for c in results where !c.fused {
                let f = results.first {
                    $0.tokens == c.tokens && $0.hidden == c.hidden && $0.strategy == c.strategy && $0.fused
                }!
                let bytes = Double(c.tokens * c.hidden * 4)
                let base = baseline(c)
                let name = c.strategy.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                lines.append(
                    String(format: "%5d  %5d  ", c.tokens, c.hidden) + name
                        + String(
                            format: "  %11.1f  %6.2f  %5.2f  %11.1f  %6.2f  %5.2f", c.seconds * 1e6,
                            bytes / c.seconds / 1e9,
                            base / c.seconds, f.seconds * 1e6, bytes / f.seconds / 1e9, base / f.seconds))
            }
            say(lines.joined(separator: "\n"))
        }
    }
}
