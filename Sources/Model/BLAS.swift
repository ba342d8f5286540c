import CBLAS

/// Thin, shape-checked entry points into OpenBLAS.
public enum BLAS {
    /// The kernel set OpenBLAS chose for this CPU at load time ("SkylakeX", "Haswell", ...;
    /// "Prescott", its generic SSE3 fallback, when it does not recognise the CPU).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Sets the number of OpenBLAS threads for this process (at least 1).
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of OpenBLAS threads of this process.
    public static var threads: Int {
        Int(openblas_get_num_threads())
    }

    /// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major. `fileID` and `function` name the
    /// call in a step profile (StepProfile.swift).
    /// `transA`/`transB` select op(X) = X^T. A is m x k after op, B is k x n after op.
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        fileID: StaticString = #fileID, function: StaticString = #function
    ) {
        StepProfile.measure(StepProfile.label(fileID, function), .blas) {
            cblas_sgemm(
                CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k),
                alpha, a, Int32(lda), b, Int32(ldb),
                beta, c, Int32(ldc))
        }
    }
}
