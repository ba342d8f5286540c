import CKernels
import Foundation

/// Which of our own kernels run: the C kernels of Sources/CKernels built for AVX-512F or for
/// AVX2+FMA (the tap-GEMM convolutions, GroupNorm's passes, the per-channel Double sums), or
/// neither (`fallback`: OpenBLAS convolutions and the Swift GroupNorm, baseline x86-64).
///
/// The two C variants compute every output with the same operations in the same order and give
/// the same bits; the fallback rounds differently (OpenBLAS sums in its own order). Each variant
/// is deterministic and gives the same bits for any thread count.
public enum KernelVariant: String, CaseIterable, Sendable, CustomStringConvertible {
    case avx512, avx2, fallback

    /// The variant this process runs: `SCVAE_KERNELS` (avx512, avx2 or fallback) when set, else the
    /// fastest this CPU supports; `SCVAE_DIRECT_CONV=0` is the fallback whatever `SCVAE_KERNELS` says.
    public static let selected: KernelVariant = {
        switch choose(environment: ProcessInfo.processInfo.environment, supported: supported) {
        case .success(let variant): return variant
        case .failure(let problem): fatalError(problem.description)
        }
    }()

    /// The variants this CPU runs, fastest first (always ending with `fallback`).
    public static let supported: [KernelVariant] = allCases.filter(\.isSupported)

    /// True when this CPU and operating system run the variant.
    public var isSupported: Bool {
        guard let kernels else { return true }
        return scvae_kernels_supported(kernels)
    }

    /// The C kernels' name for the variant; nil for the fallback, which runs none of them.
    var kernels: scvae_kernels? {
        switch self {
        case .avx512: return .avx512
        case .avx2: return .avx2
        case .fallback: return nil
        }
    }

    /// The C kernels' name for a variant that runs them (callers have checked `runsOwnKernels`).
    var cKernels: scvae_kernels {
        guard let kernels else { preconditionFailure("the fallback runs none of the C kernels") }
        return kernels
    }

    /// The tap-GEMM convolutions and GroupNorm's C passes run (any variant but the fallback).
    public var runsOwnKernels: Bool { kernels != nil }

    public var description: String {
        switch self {
        case .avx512: return "AVX-512"
        case .avx2: return "AVX2+FMA"
        case .fallback: return "fallback (OpenBLAS convolutions, Swift GroupNorm)"
        }
    }

    /// Why an environment asks for a variant that cannot run.
    enum Problem: Error, Equatable, CustomStringConvertible {
        /// SCVAE_KERNELS holds something other than a variant's name.
        case unknown(String)
        /// SCVAE_KERNELS names a variant this CPU does not run.
        case unsupported(KernelVariant)

        var description: String {
            switch self {
            case .unknown(let value):
                return "SCVAE_KERNELS=\(value): expected one of \(KernelVariant.allCases.map(\.rawValue).joined(separator: ", "))"
            case .unsupported(let variant):
                return "SCVAE_KERNELS=\(variant.rawValue): this CPU does not run the \(variant) kernels"
            }
        }
    }

    /// The choice `selected` makes for an environment on a CPU that runs `supported`. A variant
    /// asked for by name that cannot run is an error, not a quiet fallback: a benchmark or a test
    /// run that forces a variant must measure that variant or stop.
    static func choose(environment: [String: String], supported: [KernelVariant]) -> Result<KernelVariant, Problem> {
        if environment["SCVAE_DIRECT_CONV"] == "0" { return .success(.fallback) }
        guard let name = environment["SCVAE_KERNELS"], !name.isEmpty else {
            return .success(supported.first ?? .fallback)
        }
        guard let variant = KernelVariant(rawValue: name) else { return .failure(.unknown(name)) }
        return supported.contains(variant) ? .success(variant) : .failure(.unsupported(variant))
    }
}
