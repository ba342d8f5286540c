// swift-tools-version:6.1
import PackageDescription

// Dependency direction (docs/architecture.md), never backwards:
//   Wire -> CZmq, CCRC32C, CFutex   Model -> CBLAS, CKernels  Data -> CTurboJPEG, CPNG, CCRC32C
//   Worker -> Model, Wire, Data                       Coordinator -> Wire, Data
// Executables are thin shells over these libraries.
let package = Package(
    name: "scvae",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "scvae", targets: ["scvae"]),
        .executable(name: "scvae-worker", targets: ["scvae-worker"]),
        .executable(name: "scvae-coordinator", targets: ["scvae-coordinator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C libraries from Debian packages.
        .systemLibrary(name: "CZmq", path: "Sources/CZmq",
                       providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG",
                       providers: [.apt(["libpng-dev"])]),

        // C shims of our own.
        .target(name: "CCRC32C", path: "Sources/CCRC32C"),
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(name: "CFutex", path: "Sources/CFutex"),

        // Libraries.
        .target(name: "Wire", dependencies: ["CZmq", "CCRC32C", "CFutex"]),
        .target(name: "Model", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "Data", dependencies: ["CTurboJPEG", "CPNG", "CCRC32C"]),
        .target(name: "Worker", dependencies: [
            "Model", "Wire", "Data",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Coordinator", dependencies: [
            "Wire", "Data",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Bandwidth measurements of the ring and of ZeroMQ, for `scvae bench` (WireBenchmarks -> Wire).
        .target(name: "WireBenchmarks", dependencies: ["Wire"]),

        // Executables.
        .executableTarget(name: "scvae", dependencies: [
            "Model", "Data", "Worker", "Wire", "WireBenchmarks",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "scvae-worker", dependencies: [
            "Worker",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "scvae-coordinator", dependencies: [
            "Coordinator",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Tests.
        .testTarget(name: "WireTests", dependencies: ["Wire", "WireBenchmarks"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Data"]),
        .testTarget(name: "DataTests", dependencies: ["Data"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "Coordinator"]),
        .testTarget(name: "CoordinatorTests", dependencies: ["Coordinator"]),
    ]
)
