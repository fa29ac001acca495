// swift-tools-version:6.0
import PackageDescription

// Release builds target Haswell-class x86-64 (AVX2 + FMA): without a target CPU Swift compiles
// SIMD loops for baseline SSE2 and FMA becomes a libm call. AVX-512 code lives in CKernels,
// behind runtime CPU checks, so the binary still runs on older hosts.
let optimized: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .release))
]

let package = Package(
    name: "nemotron-run",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "nemotron-run", targets: ["nemotron-run"]),
        .library(name: "Nemotron", targets: ["Nemotron"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Already dependencies of Hummingbird; named for the server's logger, channel and service group.
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "Nemotron",
            dependencies: ["COpenBLAS", "CKernels", .product(name: "Yams", package: "Yams")],
            swiftSettings: optimized),
        .target(name: "NemotronMPI", dependencies: ["Nemotron", "CMPI"], swiftSettings: optimized),
        // The OpenAI-compatible server: HTTP on rank 0, the control message and the serving loop on every rank.
        .target(
            name: "NemotronServer",
            dependencies: [
                "Nemotron", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: optimized),
        .executableTarget(
            name: "nemotron-run",
            dependencies: [
                "Nemotron", "NemotronMPI", "NemotronServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimized),
        .testTarget(
            name: "NemotronTests",
            // Depending on the executable makes `swift test` build it for the CLI tests.
            dependencies: ["Nemotron", "NemotronServer", "nemotron-run"],
            exclude: ["Fixtures"]),
    ]
)
