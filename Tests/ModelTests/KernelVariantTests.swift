import Testing
@testable import Model

/// How the process picks its kernel variant from SCVAE_KERNELS, SCVAE_DIRECT_CONV and the CPU.
@Suite struct KernelVariantTests {
    static let everything: [KernelVariant] = [.avx512, .avx2, .fallback]
    static let zen3: [KernelVariant] = [.avx2, .fallback]

    @Test func withoutTheVariablesTheFastestSupportedRuns() {
        #expect(KernelVariant.choose(environment: [:], supported: Self.everything) == .success(.avx512))
        #expect(KernelVariant.choose(environment: [:], supported: Self.zen3) == .success(.avx2))
        #expect(KernelVariant.choose(environment: [:], supported: [.fallback]) == .success(.fallback))
        #expect(KernelVariant.choose(environment: ["SCVAE_KERNELS": ""], supported: Self.zen3) == .success(.avx2))
    }

    @Test func scvaeKernelsForcesASupportedVariant() {
        for variant in Self.everything {
            #expect(KernelVariant.choose(environment: ["SCVAE_KERNELS": variant.rawValue], supported: Self.everything) == .success(variant))
        }
        #expect(KernelVariant.choose(environment: ["SCVAE_KERNELS": "fallback"], supported: Self.zen3) == .success(.fallback))
    }

    @Test func anUnsupportedOrUnknownVariantIsAnError() {
        #expect(KernelVariant.choose(environment: ["SCVAE_KERNELS": "avx512"], supported: Self.zen3) == .failure(.unsupported(.avx512)))
        #expect(KernelVariant.choose(environment: ["SCVAE_KERNELS": "AVX2"], supported: Self.zen3) == .failure(.unknown("AVX2")))
        #expect(KernelVariant.Problem.unknown("sse").description.contains("avx512, avx2, fallback"))
    }

    @Test func directConvZeroIsTheFallbackWhateverScvaeKernelsSays() {
        #expect(KernelVariant.choose(environment: ["SCVAE_DIRECT_CONV": "0"], supported: Self.everything) == .success(.fallback))
        #expect(KernelVariant.choose(environment: ["SCVAE_DIRECT_CONV": "0", "SCVAE_KERNELS": "avx2"],
                                     supported: Self.everything) == .success(.fallback))
        #expect(KernelVariant.choose(environment: ["SCVAE_DIRECT_CONV": "1"], supported: Self.everything) == .success(.avx512))
    }

    @Test func theListOfSupportedVariantsEndsWithTheFallbackAndHoldsTheSelectedOne() {
        #expect(KernelVariant.supported.last == .fallback)
        #expect(KernelVariant.supported.contains(KernelVariant.selected))
        #expect(KernelVariant.supported == KernelVariant.allCases.filter(\.isSupported))
    }
}
