#if canImport(Glibc)
import Glibc
import Synchronization

/// The layout of one rank's inbox segment: a control block, then `slotCount` slots the
/// previous rank writes pieces into. Native byte order (both ends run on this host).
///
///     control block, 4096 bytes (each atomic counter on its own 64-byte cache line):
///         0 magic "SCVAESHM"   8 version     12 slotCount   16 slotBytes   24 runID
///        32 ownerRank          36 worldSize  40 ownerPID    44 producerPID
///        64 published  (pieces written by the producer; atomic, producer stores)
///       128 consumed   (pieces taken by the owner; atomic, owner stores)
///       192 ownerClosed, 256 producerClosed (atomic 0/1: that end left the ring)
///       320 ready      (atomic: 1 once the creator filled the fields above)
///       384 doorbell   (atomic UInt32, rung by either end after a change; see Doorbell)
///     slot i at 4096 + i * slotStride: a 64-byte `PieceHeader`, then slotBytes of float32
struct InboxLayout: Equatable {
    static let magic: UInt64 = 0x4D48_5345_4156_4353   // "SCVAESHM" read as little-endian bytes
    static let version: UInt32 = 2
    static let controlBytes = 4096
    static let slotHeaderBytes = 64

    var slotCount: Int
    /// Data bytes per slot: one piece of float32, rounded up to a cache line.
    var slotBytes: Int

    init(slotCount: Int, pieceElements: Int) {
        self.slotCount = slotCount
        self.slotBytes = (pieceElements * MemoryLayout<Float>.size + 63) / 64 * 64
    }

    var slotStride: Int { InboxLayout.slotHeaderBytes + slotBytes }
    var totalBytes: Int { InboxLayout.controlBytes + slotCount * slotStride }
    var slotElements: Int { slotBytes / MemoryLayout<Float>.size }
}

/// Typed access to a mapped inbox: plain fields written once by the creator, atomic counters
/// and flags shared by the owner (consumer) and the previous rank (producer).
struct Inbox {
    let base: UnsafeMutableRawPointer
    let layout: InboxLayout

    /// Fields the creator writes before it sets `ready`.
    struct Identity: Equatable {
        var runID: UInt64
        var ownerRank: Int
        var worldSize: Int
        var ownerPID: Int32
    }

    /// Writes a new inbox's control block into zeroed memory and marks it ready.
    static func format(_ base: UnsafeMutableRawPointer, layout: InboxLayout, identity: Identity) -> Inbox {
        base.storeBytes(of: InboxLayout.magic, toByteOffset: 0, as: UInt64.self)
        base.storeBytes(of: InboxLayout.version, toByteOffset: 8, as: UInt32.self)
        base.storeBytes(of: UInt32(layout.slotCount), toByteOffset: 12, as: UInt32.self)
        base.storeBytes(of: UInt64(layout.slotBytes), toByteOffset: 16, as: UInt64.self)
        base.storeBytes(of: identity.runID, toByteOffset: 24, as: UInt64.self)
        base.storeBytes(of: UInt32(identity.ownerRank), toByteOffset: 32, as: UInt32.self)
        base.storeBytes(of: UInt32(identity.worldSize), toByteOffset: 36, as: UInt32.self)
        base.storeBytes(of: identity.ownerPID, toByteOffset: 40, as: Int32.self)
        let inbox = Inbox(base: base, layout: layout)
        inbox.counter(at: 320).pointee.store(1, ordering: .releasing)
        return inbox
    }

    /// Reads the control block of a mapped segment of `size` bytes: nil while it is not ready;
    /// an error text when it is not an inbox of this format or does not fit in `size`.
    static func read(_ base: UnsafeRawPointer, size: Int) -> Result<(Inbox, Identity), InboxFormatError>? {
        guard size >= InboxLayout.controlBytes else { return nil }
        let ready = UnsafeMutableRawPointer(mutating: base + 320).assumingMemoryBound(to: Atomic<UInt64>.self)
        guard ready.pointee.load(ordering: .acquiring) == 1 else { return nil }
        guard base.loadUnaligned(as: UInt64.self) == InboxLayout.magic else { return .failure(.notAnInbox) }
        let version = base.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        guard version == InboxLayout.version else { return .failure(.version(version)) }
        var layout = InboxLayout(slotCount: Int(base.loadUnaligned(fromByteOffset: 12, as: UInt32.self)), pieceElements: 0)
        layout.slotBytes = Int(base.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        guard layout.slotCount >= 1, layout.slotBytes % 64 == 0, layout.slotBytes > 0,
              layout.slotBytes <= size, layout.totalBytes <= size else {
            return .failure(.geometry(slots: layout.slotCount, slotBytes: layout.slotBytes, size: size))
        }
        let identity = Identity(runID: base.loadUnaligned(fromByteOffset: 24, as: UInt64.self),
                                ownerRank: Int(base.loadUnaligned(fromByteOffset: 32, as: UInt32.self)),
                                worldSize: Int(base.loadUnaligned(fromByteOffset: 36, as: UInt32.self)),
                                ownerPID: base.loadUnaligned(fromByteOffset: 40, as: Int32.self))
        return .success((Inbox(base: UnsafeMutableRawPointer(mutating: base), layout: layout), identity))
    }

    var ownerPID: Int32 { base.loadUnaligned(fromByteOffset: 40, as: Int32.self) }
    var producerPID: Int32 {
        get { base.loadUnaligned(fromByteOffset: 44, as: Int32.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 44, as: Int32.self) }
    }

    var published: UnsafeMutablePointer<Atomic<UInt64>> { counter(at: 64) }
    var consumed: UnsafeMutablePointer<Atomic<UInt64>> { counter(at: 128) }
    var ownerClosed: UnsafeMutablePointer<Atomic<UInt64>> { counter(at: 192) }
    var doorbell: Doorbell { Doorbell(word: (base + 384).assumingMemoryBound(to: Atomic<UInt32>.self)) }
    var producerClosed: UnsafeMutablePointer<Atomic<UInt64>> { counter(at: 256) }

    /// Slot holding the piece with running number `number`.
    func slot(_ number: UInt64) -> UnsafeMutableRawPointer {
        base + InboxLayout.controlBytes + Int(number % UInt64(layout.slotCount)) * layout.slotStride
    }

    private func counter(at offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (base + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
}

/// Why a mapped segment is not a usable inbox.
enum InboxFormatError: Error, Equatable, CustomStringConvertible {
    case notAnInbox
    case version(UInt32)
    case geometry(slots: Int, slotBytes: Int, size: Int)

    var description: String {
        switch self {
        case .notAnInbox: "not an scvae ring segment (bad magic)"
        case let .version(found): "segment format version \(found), this build reads \(InboxLayout.version)"
        case let .geometry(slots, slotBytes, size): "\(slots) slots of \(slotBytes) bytes do not fit a \(size)-byte segment"
        }
    }
}
#endif
