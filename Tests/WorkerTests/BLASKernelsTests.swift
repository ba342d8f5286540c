import Testing
@testable import Worker

@Suite struct BLASKernelsTests {
    static let avx512: Set<String> = ["sse3", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]

    @Test func theGenericFallbackIsReplacedByTheBestKernelsTheCPUHas() {
        #expect(BLASKernels.recommendedCoreType(loadedCore: "Prescott", cpuFlags: Self.avx512, environment: [:]) == "SkylakeX")
        #expect(BLASKernels.recommendedCoreType(loadedCore: "Prescott", cpuFlags: ["avx2", "fma"], environment: [:]) == "Haswell")
        #expect(BLASKernels.recommendedCoreType(loadedCore: "Prescott", cpuFlags: ["sse3"], environment: [:]) == nil)
    }

    @Test func aRecognisedCPUAndTheOwnersChoiceAreKept() {
        #expect(BLASKernels.recommendedCoreType(loadedCore: "Haswell", cpuFlags: Self.avx512, environment: [:]) == nil)
        #expect(BLASKernels.recommendedCoreType(loadedCore: "Prescott", cpuFlags: Self.avx512,
                                                environment: ["OPENBLAS_CORETYPE": "Prescott"]) == nil)
        #expect(BLASKernels.recommendedCoreType(loadedCore: "Prescott", cpuFlags: Self.avx512,
                                                environment: ["SCVAE_KEEP_BLAS_KERNELS": "1"]) == nil)
    }

    @Test func thisMachinesFlagsAreRead() {
        // Every x86-64 CPU Linux runs on reports SSE2 (part of the base ISA).
        #if arch(x86_64) && os(Linux)
        #expect(BLASKernels.cpuFlags().contains("sse2"))
        #endif
    }
}
