#if canImport(Glibc)
import CFutex
import Glibc
import Synchronization

/// A 32-bit counter in an inbox's control block that either end rings after it changes the
/// inbox: the producer after publishing a piece, the owner after freeing a slot, either when it
/// leaves the ring. A rank with nothing to do sleeps on the doorbells of its two inboxes (its
/// own and the next rank's) until one rings, instead of napping: the core goes to the work
/// beside it (backward, in training) and the rank wakes as soon as a neighbour moves.
struct Doorbell {
    let word: UnsafeMutablePointer<Atomic<UInt32>>

    /// Read before checking what the inbox holds: a ring after this read makes a wait on the
    /// value return at once, so no change between the check and the wait is slept through.
    var value: UInt32 { word.pointee.load(ordering: .acquiring) }

    func ring() {
        word.pointee.wrappingAdd(1, ordering: .releasing)
        _ = scvae_futex_wake(address)
    }

    private var address: UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
    }

    /// False once a wait failed with an error (a kernel before Linux 5.16 has no futex_waitv; a
    /// seccomp profile may refuse futex calls): every wait of the process naps from then on.
    private static let blocks = Atomic<Bool>(true)

    /// Sleeps until either doorbell differs from its read value, rings, or `timeout` (at most an
    /// hour) passes. Returns false when it could not block (the caller naps instead).
    static func wait(_ first: (bell: Doorbell, value: UInt32), _ second: (bell: Doorbell, value: UInt32)?,
                     timeout: Duration) -> Bool {
        guard blocks.load(ordering: .relaxed) else { return false }
        let (seconds, attoseconds) = min(max(timeout, .zero), .seconds(3600)).components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let result = scvae_futex_wait_either(first.bell.address, first.value, second?.bell.address, second?.value ?? 0,
                                             nanoseconds)
        guard result >= 0 else {
            blocks.store(false, ordering: .relaxed)
            return false
        }
        return true
    }
}
#endif
