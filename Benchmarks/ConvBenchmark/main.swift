// Convolution and model-step timings, single-threaded OpenBLAS unless SCVAE_BENCH_THREADS says otherwise.
// Run: Benchmarks/conv-benchmark.sh  (compiles Sources/Model with this file, -O, whole module)
// Prints GFLOP/s of forward and backward (grad-input + grad-weight + bias) for the convolutions of
// the `small` configuration, then images/s of whole forwardBackward steps. Environment:
// SCVAE_BENCH_BATCH (16), SCVAE_BENCH_CONFIGS (tiny,small), SCVAE_BENCH_SKIP_CONV (set: skip convs),
// SCVAE_BENCH_SHAPES (comma-separated prefixes of the shape names to run, e.g. "3x3 64x64,1x1"),
// SCVAE_BENCH_METHODS (comma-separated: im2col,shifted,direct).
import Foundation

// As the product does (Sources/Worker/BLASKernels.swift, not compiled in here): OpenBLAS 0.3.21 runs
// its generic SSE3 kernels on CPUs newer than it knows, a fifth of the speed; compare against the
// kernels the product would use.
// The same rule as BLASKernels.recommendedCoreType (keep the two in step).
if BLAS.coreName == "Prescott", ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
   ProcessInfo.processInfo.environment["SCVAE_KEEP_BLAS_KERNELS"] != "1",
   let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
   let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
    let flags = Set(line.split(separator: " ").map(String.init))
    let core = flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) ? "SkylakeX"
        : flags.isSuperset(of: ["avx2", "fma"]) ? "Haswell" : nil
    if let core {
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
let threads = Int(ProcessInfo.processInfo.environment["SCVAE_BENCH_THREADS"] ?? "1") ?? 1
BLAS.setThreads(threads)
print("threads: \(threads); OpenBLAS kernels: \(BLAS.coreName)")

func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Best of `repeats` timings (the machine is shared; the minimum is the least disturbed).
func best(_ repeats: Int, _ body: () -> Void) -> Double {
    body()
    return (0..<repeats).map { _ in seconds(body) }.min()!
}

// sgemm peak on this machine now (it is shared: compare kernels with this, not with old figures).
do {
    let n = 1024
    let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
    var c = [Float](repeating: 0, count: n * n)
    let time = best(3) { BLAS.sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: &c, ldc: n) }
    print(String(format: "sgemm 1024^3: %.1f GFLOP/s", 2 * Double(n * n * n) / time / 1e9))
}

let batch = Int(ProcessInfo.processInfo.environment["SCVAE_BENCH_BATCH"] ?? "16") ?? 16
let shapes: [(String, Conv2dGeometry)] = [
    ("3x3 64x64 64->64", .same3x3(batch: batch, height: 64, width: 64, inChannels: 64, outChannels: 64)),
    ("3x3 32x32 128->128", .same3x3(batch: batch, height: 32, width: 32, inChannels: 128, outChannels: 128)),
    ("3x3 16x16 128->128", .same3x3(batch: batch, height: 16, width: 16, inChannels: 128, outChannels: 128)),
    ("down 64x64 64", .downsample(batch: batch, height: 64, width: 64, channels: 64)),
    ("1x1 32x32 64->128", .pointwise(batch: batch, height: 32, width: 32, inChannels: 64, outChannels: 128)),
    // imagenet-f16's levels (run with SCVAE_BENCH_BATCH=2).
    ("3x3 256x256 128->128", .same3x3(batch: batch, height: 256, width: 256, inChannels: 128, outChannels: 128)),
    ("3x3 64x64 256->256", .same3x3(batch: batch, height: 64, width: 64, inChannels: 256, outChannels: 256)),
    ("3x3 16x16 512->512", .same3x3(batch: batch, height: 16, width: 16, inChannels: 512, outChannels: 512)),
]
let workspace = Workspace()
let shapePrefixes = ProcessInfo.processInfo.environment["SCVAE_BENCH_SHAPES"].map { $0.split(separator: ",").map(String.init) }
let methodNames = ProcessInfo.processInfo.environment["SCVAE_BENCH_METHODS"].map { Set($0.split(separator: ",").map(String.init)) }
for (name, g) in shapes where ProcessInfo.processInfo.environment["SCVAE_BENCH_SKIP_CONV"] == nil
    && shapePrefixes.map({ $0.contains { name.hasPrefix($0) } }) ?? true {
    let input = UnsafeMutablePointer<Float>.allocate(capacity: g.inputCount)
    let output = UnsafeMutablePointer<Float>.allocate(capacity: g.outputCount)
    let weight = UnsafeMutablePointer<Float>.allocate(capacity: g.weightCount)
    let dWeight = UnsafeMutablePointer<Float>.allocate(capacity: g.weightCount)
    let dInput = UnsafeMutablePointer<Float>.allocate(capacity: g.inputCount)
    let bias = UnsafeMutablePointer<Float>.allocate(capacity: g.outChannels)
    for i in 0..<g.inputCount { input[i] = Float(i % 7) * 0.1 - 0.3 }
    for i in 0..<g.weightCount { weight[i] = Float(i % 5) * 0.01 - 0.02 }
    bias.initialize(repeating: 0, count: g.outChannels)
    dWeight.initialize(repeating: 0, count: g.weightCount)
    dInput.initialize(repeating: 0, count: g.inputCount)
    let flops = g.forwardFlops
    var methods: [(String, Conv2d.Method)] = [("im2col", .im2col)]
    if Conv2dShifted.applies(to: g) { methods.append(("shifted", .shifted)) }
    // The tap-GEMM kernel: forward and grad-input; its backward column includes grad-weight on BLAS.
    // (Forced here even above Conv2dDirect.maximumChannels, where the model uses BLAS, to show why.)
    if KernelVariant.selected.runsOwnKernels && (Conv2dShifted.applies(to: g) || g.isPlainProduct) { methods.append(("direct", .direct)) }
    for (label, method) in methods where methodNames?.contains(label) ?? true {
        let forward = best(3) {
            Conv2d.forward(out: output, inp: input, weight: weight, bias: bias, geometry: g, workspace: workspace, method: method)
        }
        let backward = best(3) {
            Conv2d.backward(dInput: dInput, dWeight: dWeight, dBias: bias, dOut: output, inp: input, weight: weight,
                            geometry: g, workspace: workspace, method: method)
        }
        let weightOnly = best(3) {
            Conv2d.backward(dInput: nil, dWeight: dWeight, dBias: bias, dOut: output, inp: input, weight: weight,
                            geometry: g, workspace: workspace, method: method)
        }
        // Backward = grad-input + grad-weight, each as many FLOPs as the forward.
        print(String(format: "%-20@ %-8@ forward %6.1f  backward (grad-in + grad-w) %6.1f  grad-w %6.1f  GFLOP/s  (forward %.1f ms)",
                     name as NSString, label as NSString, flops / forward / 1e9, 2 * flops / backward / 1e9,
                     flops / weightOnly / 1e9, forward * 1e3))
    }
}

let configs = (ProcessInfo.processInfo.environment["SCVAE_BENCH_CONFIGS"] ?? "tiny,small").split(separator: ",")
for config in configs.compactMap({ ModelConfig.named(String($0)) }) {
    let steps = config.imageSize <= 32 ? 5 : (config.imageSize <= 64 ? 2 : 1)
    let model = SCVAEModel(config: config, maxBatch: batch)
    var parameters = [Float](repeating: 0, count: model.layout.totalCount)
    parameters.withUnsafeMutableBufferPointer { initializeParameters($0, layout: model.layout, config: config, seed: 1) }
    var gradients = [Float](repeating: 0, count: parameters.count)
    let images = (0..<(batch * 3 * config.imageSize * config.imageSize)).map { Float($0 % 13) / 6.5 - 1 }
    let time = best(steps) {
        parameters.withUnsafeBufferPointer { p in
            gradients.withUnsafeMutableBufferPointer { g in
                _ = model.forwardBackward(parameters: p, images: images, batch: batch, gradients: g, gradientScale: 1 / Float(batch))
            }
        }
    }
    let flops = 3 * model.forwardFlopsPerImage * Double(batch)
    print(String(format: "%@ batch %d forwardBackward: %.3f s/step, %.2f images/s, %.1f GEMM GFLOP/s (3x forward FLOPs / time)",
                 config.name as NSString, batch, time, Double(batch) / time, flops / time / 1e9))
    let resident = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("VmHWM") } ?? ""
    print("  peak resident: \(resident)")
}
