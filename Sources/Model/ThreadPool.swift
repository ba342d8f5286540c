import CKernels

/// The threads our own kernels run on: the caller plus `threads - 1` helpers created once and
/// parked between jobs (Sources/CKernels/thread_pool.c).
///
/// A job is split into chunks whose boundaries depend on the data only (an image, a band of
/// rows, a tile of outputs), never on the thread count, and each chunk computes its outputs in a
/// fixed order. A sum that spans chunks (GroupNorm's parameter gradients) goes through per-chunk
/// partials that the caller adds in chunk order. So every result is bit-identical whatever
/// `threads` is (docs/model.md, "Threads"). Runs one job at a time: a model and its pool belong
/// to one thread (`serial` has no helpers and keeps no job state).
final class ThreadPool: @unchecked Sendable {
    /// No helpers: chunks run in order on the caller (kernels called outside a model, in tests).
    static let serial = ThreadPool(threads: 1)

    let threads: Int
    private let pool: OpaquePointer

    init(threads: Int) {
        precondition(threads >= 1, "a thread pool needs at least one thread")
        guard let pool = scvae_thread_pool_create(Int32(threads)) else {
            fatalError("could not start \(threads - 1) kernel helper thread(s)")
        }
        self.threads = threads
        self.pool = pool
    }

    deinit { scvae_thread_pool_destroy(pool) }

    /// Calls `body(chunk, slot)` once for every chunk in 0..<chunks, spread over the pool's
    /// threads, and returns when all have run. `slot` (0..<min(threads, chunks)) numbers the
    /// threads taking part and only selects per-thread scratch (`Workspace.scratch(for:)`), so a
    /// job of few chunks touches little of it. Chunks run concurrently: each must write only its
    /// own outputs.
    /// `label` (by default the calling file and function) names the job in a step profile
    /// (StepProfile.swift).
    func run(chunks: Int, label: String? = nil, fileID: StaticString = #fileID, function: StaticString = #function,
             _ body: (_ chunk: Int, _ slot: Int) -> Void) {
        if chunks <= 0 { return }
        StepProfile.measure(label ?? StepProfile.label(fileID, function), .pool(chunks: chunks)) {
            runUntimed(chunks: chunks, body)
        }
    }

    fileprivate func runUntimed(chunks: Int, _ body: (_ chunk: Int, _ slot: Int) -> Void) {
        if threads == 1 || chunks == 1 {
            for chunk in 0..<chunks { body(chunk, 0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { task in
                scvae_thread_pool_run(pool, chunks, { context, chunk, slot in
                    context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(chunk, Int(slot))
                }, task)
            }
        }
    }
}

extension ThreadPool {
    /// Floats per chunk of an elementwise pass (256 KiB).
    static let elementsPerChunk = 1 << 16

    /// destination[i] = source[i] for i < count, in chunks.
    func copy(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int,
              fileID: StaticString = #fileID, function: StaticString = #function) {
        eachElementChunk(count, label: StepProfile.label(fileID, function)) { (destination + $0).update(from: source + $0, count: $1) }
    }

    /// destination[i] += source[i] for i < count, in chunks.
    func add(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int,
             fileID: StaticString = #fileID, function: StaticString = #function) {
        eachElementChunk(count, label: StepProfile.label(fileID, function)) { VectorMath.add(source + $0, to: destination + $0, count: $1) }
    }

    private func eachElementChunk(_ count: Int, label: @autoclosure () -> String,
                                  _ body: (_ start: Int, _ count: Int) -> Void) {
        let size = Self.elementsPerChunk
        let chunks = (count + size - 1) / size
        guard chunks > 0 else { return }
        StepProfile.measure(label() + " (copy/add)", .pool(chunks: chunks)) {
            runUntimed(chunks: chunks) { chunk, _ in body(chunk * size, min(size, count - chunk * size)) }
        }
    }
}
