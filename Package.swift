// swift-tools-version:6.1
import PackageDescription

// Dependency direction (docs/architecture.md), never backwards:
//   Wire -> CZmq, CCRC32C, CFutex            Model -> CBLAS, CKernels
//   TensorFiles -> CCRC32C                   Images -> TensorFiles, CTurboJPEG, CPNG
//   Dataset -> Images, TensorFiles           Checkpoints -> TensorFiles
//   Worker -> Model, Wire, Dataset, Images, TensorFiles, Checkpoints
//   Coordinator -> Wire, Dataset, TensorFiles, Checkpoints, Launch (never Model)
//   Launch -> CAffinity                      CommandOptions -> Launch
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
        .target(name: "CAffinity", path: "Sources/CAffinity"),

        // Libraries.
        .target(name: "Wire", dependencies: ["CZmq", "CCRC32C", "CFutex"]),
        .target(name: "Model", dependencies: ["CBLAS", "CKernels"]),
        // Durable file I/O and the file formats of tensors and records: safetensors, NPY, JSON lines.
        .target(name: "TensorFiles", dependencies: ["CCRC32C"]),
        // Decoding (JPEG, PNG), transforms, quality measures.
        .target(name: "Images", dependencies: ["TensorFiles", "CTurboJPEG", "CPNG"]),
        // The dataset index, shards, the sampler and the prefetcher; the built-in sample data.
        .target(name: "Dataset", dependencies: ["Images", "TensorFiles"]),
        // Checkpoint folders: atomic writes, verification, the folder lock.
        .target(name: "Checkpoints", dependencies: ["TensorFiles"]),
        .target(name: "Worker", dependencies: [
            "Model", "Wire", "Dataset", "Images", "TensorFiles", "Checkpoints",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Starting processes on a node: the CPUs this process may use, child processes and their
        // restart policy, the per-node supervisor of `scvae-worker --nproc-per-node`.
        .target(name: "Launch", dependencies: [
            "CAffinity",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Coordinator", dependencies: [
            "Wire", "Dataset", "TensorFiles", "Checkpoints", "Launch",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Bandwidth measurements of the ring and of ZeroMQ, for `scvae bench` (WireBenchmarks -> Wire).
        .target(name: "WireBenchmarks", dependencies: ["Wire"]),

        // Command-line options the executables share.
        .target(name: "CommandOptions", dependencies: [
            "Launch",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Executables.
        .executableTarget(name: "scvae", dependencies: [
            "Model", "Dataset", "Images", "TensorFiles", "Checkpoints", "Worker", "Wire", "WireBenchmarks",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "scvae-worker", dependencies: [
            "Worker", "CommandOptions", "Launch",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "scvae-coordinator", dependencies: [
            "Coordinator", "CommandOptions", "Launch",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Tests.
        .testTarget(name: "WireTests", dependencies: ["Wire", "WireBenchmarks"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "TensorFiles"]),
        // The four data libraries (TensorFiles, Images, Dataset, Checkpoints).
        .testTarget(name: "DataTests", dependencies: ["TensorFiles", "Images", "Dataset", "Checkpoints"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "Coordinator", "Dataset", "Images", "TensorFiles", "Checkpoints"]),
        .testTarget(name: "LaunchTests", dependencies: ["Launch", "CommandOptions"]),
        .testTarget(name: "CoordinatorTests", dependencies: ["Coordinator", "Dataset", "TensorFiles", "Checkpoints"]),
    ]
)
