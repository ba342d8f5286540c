/// Why a ring collective failed. After any of these the generation is broken: the worker
/// reports to the coordinator, which starts a new one. Ranks are ring ranks.
public enum RingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The previous rank sent nothing for `seconds` (the silence deadline) while this rank
    /// waited for step `step`, piece `piece`: it is dead or gone (or the liveness hook said so).
    /// `endpoint` is the silent rank's address when known; nil from the ring itself, whose
    /// receiving side is connected to, so does not know its peer's address.
    case peerSilent(rank: Int, endpoint: String?, seconds: Double, step: Int, piece: Int)
    /// The next rank did not take data for `seconds`: it is dead or its queue is full.
    case sendStalled(rank: Int, endpoint: String, seconds: Double)
    /// A frame of a newer generation arrived from `rank`: this rank is stale and must rejoin.
    case newerGeneration(rank: Int, found: UInt64, current: UInt64)
    /// A piece from `rank` does not match the schedule: `expected` and `found` describe it.
    case unexpectedPiece(rank: Int, expected: String, found: String)
    /// A frame from `rank` could not be decoded.
    case badFrame(rank: Int, error: DecodeError)
    /// The data of a piece from `rank` fails its CRC32C.
    case dataChecksum(rank: Int, step: Int, piece: Int, expected: UInt32, computed: UInt32)
    /// libzmq failed while talking to `rank`; `rank` is this rank's own number when setting up
    /// its own socket failed (e.g. the bind).
    case transport(rank: Int, error: ZmqError)
    /// The connection to the next rank, `rank` at `endpoint`, did not come up within `seconds`
    /// while that rank was alive: nobody listens there, a firewall drops it, or its CURVE key is
    /// not the one this rank was given. Its address is unreachable from here.
    case unreachable(rank: Int, endpoint: String, seconds: Double)
    /// libzmq kept a zero-copy buffer longer than `seconds`; the buffer cannot be safely reused.
    case bufferStillInUse(seconds: Double)
    /// A caller waited `seconds` for `job` on the collective thread (setup, or a ticket) in vain.
    case collectiveThreadTimedOut(job: String, seconds: Double)
    /// The collective thread was stopped (or never started) before it ran `job`.
    case collectiveThreadStopped(job: String)

    public var description: String {
        switch self {
        case let .peerSilent(rank, endpoint, seconds, step, piece):
            "rank \(rank) (\(endpoint ?? "endpoint unknown")) silent for \(seconds) s; waiting for step \(step) piece \(piece)"
        case let .sendStalled(rank, endpoint, seconds):
            "rank \(rank) (\(endpoint)) took no data for \(seconds) s"
        case let .newerGeneration(rank, found, current):
            "rank \(rank) is in generation \(found), this rank in \(current)"
        case let .unexpectedPiece(rank, expected, found):
            "unexpected piece from rank \(rank): expected \(expected), found \(found)"
        case let .badFrame(rank, error):
            "bad frame from rank \(rank): \(error)"
        case let .dataChecksum(rank, step, piece, expected, computed):
            "data of step \(step) piece \(piece) from rank \(rank) has CRC32C 0x\(String(computed, radix: 16)), header says 0x\(String(expected, radix: 16))"
        case let .transport(rank, error):
            "transport to rank \(rank): \(error)"
        case let .unreachable(rank, endpoint, seconds):
            "no connection to rank \(rank) at \(endpoint) within \(seconds) s: nobody listens there, a firewall blocks it, or its CURVE key is not the one this rank was given"
        case let .bufferStillInUse(seconds):
            "zero-copy buffer still held by libzmq after \(seconds) s"
        case let .collectiveThreadTimedOut(job, seconds):
            "waited \(seconds) s for \(job) on the collective thread"
        case let .collectiveThreadStopped(job):
            "collective thread stopped before \(job)"
        }
    }
}
