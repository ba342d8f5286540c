import Foundation
import Model

/// Choosing OpenBLAS's kernels on CPUs newer than the installed OpenBLAS knows.
///
/// Debian's OpenBLAS 0.3.21 falls back to its generic "Prescott" (SSE3) kernels on CPUs it does
/// not recognise, at about a third of the speed of its AVX-512 ("SkylakeX") or AVX2 ("Haswell")
/// kernels on the same core. OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads, so a
/// process that finds itself on the fallback re-executes itself with the variable set. An
/// OPENBLAS_CORETYPE already in the environment is always respected (the machine's owner set
/// it), and SCVAE_KEEP_BLAS_KERNELS=1 turns the choice off.
public enum BLASKernels {
    /// The core type to run with, or nil to keep what OpenBLAS chose.
    public static func recommendedCoreType(loadedCore: String, cpuFlags: Set<String>,
                                           environment: [String: String]) -> String? {
        guard loadedCore == "Prescott", environment["OPENBLAS_CORETYPE"] == nil,
              environment["SCVAE_KEEP_BLAS_KERNELS"] != "1" else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The CPU's feature flags from /proc/cpuinfo (empty where there is none).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        return cpuFlags(cpuinfo: text)
    }

    /// The flags of the first processor listed in a /proc/cpuinfo text.
    static func cpuFlags(cpuinfo text: String) -> Set<String> {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Re-executes this process with OPENBLAS_CORETYPE set when OpenBLAS loaded its generic
    /// kernels on a CPU that has faster ones; returns only when there is nothing to change (or the
    /// re-execution failed, in which case the process goes on with the generic kernels).
    public static func useFastestKernels() {
        let environment = ProcessInfo.processInfo.environment
        guard let core = recommendedCoreType(loadedCore: BLAS.coreName, cpuFlags: cpuFlags(), environment: environment) else {
            return
        }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure: carry on with the kernels already loaded.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
