import Foundation
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

    @Test func theFlagsLineOfCPUInfoIsRead() {
        let cpuinfo = """
            processor\t: 0
            vendor_id\t: AuthenticAMD
            flags\t\t: fpu sse2 avx2 fma
            bugs\t\t: sysret_ss_attrs

            processor\t: 1
            flags\t\t: fpu sse2 avx2 fma avx512f
            """
        #expect(BLASKernels.cpuFlags(cpuinfo: cpuinfo) == ["fpu", "sse2", "avx2", "fma"], "the first processor's line")
        #expect(BLASKernels.cpuFlags(cpuinfo: "processor\t: 0\n").isEmpty)
        // On this machine, when it has /proc/cpuinfo, some flags are read.
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8), text.contains("flags") {
            #expect(!BLASKernels.cpuFlags().isEmpty)
        }
    }
}
