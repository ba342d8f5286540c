/// The I/O-free core of a ring collective (the "Instance"): it walks a `RingPlan`, checks every
/// incoming piece against it, applies the piece to the buffer and says what to send next.
/// `RingDriver` drives it over either transport; the in-memory tests drive it directly.
public struct RingMachine: Sendable {
    /// A piece to send to the next rank: its header, and the buffer range whose bytes follow.
    public struct Send: Sendable, Equatable {
        public var header: RingChunkHeader
        public var range: Range<Int>
    }

    /// What became of an incoming piece.
    public enum Outcome: Sendable, Equatable {
        /// Applied to the buffer; `forward` (if any) must now be sent.
        case applied(forward: Send?)
        /// Left over from an older generation or an earlier collective: ignored.
        case dropped(generation: UInt64, sequence: UInt64)
    }

    public let plan: RingPlan
    public let rank: Int
    public let worldSize: Int
    public let generation: UInt64
    /// Number of this collective within the generation.
    public let sequence: UInt64
    /// Whether outgoing pieces carry a CRC32C of their data.
    public let checksumsData: Bool
    private var nextIndex = 0

    public init(plan: RingPlan, rank: Int, worldSize: Int, generation: UInt64, sequence: UInt64, checksumsData: Bool) {
        self.plan = plan
        self.rank = rank
        self.worldSize = worldSize
        self.generation = generation
        self.sequence = sequence
        self.checksumsData = checksumsData
    }

    public var previousRank: Int { (rank - 1 + worldSize) % worldSize }
    public var nextRank: Int { (rank + 1) % worldSize }

    /// The receive the machine waits for, nil when the collective is complete.
    public var nextReceive: RingReceive? { nextIndex < plan.receives.count ? plan.receives[nextIndex] : nil }
    public var isComplete: Bool { nextReceive == nil }

    /// The pieces to send before anything is received.
    public func initialSends(buffer: UnsafeBufferPointer<Float>) -> [Send] {
        plan.initialSends.map { send(for: $0, buffer: buffer) }
    }

    /// Checks an incoming piece (frame `generation`, `header`, and the raw float32 `data`) and
    /// applies it to `buffer`. Stale pieces are dropped; anything else out of plan is an error.
    public mutating func accept(generation frameGeneration: UInt64, header: RingChunkHeader, data: UnsafeRawBufferPointer,
                                buffer: UnsafeMutableBufferPointer<Float>) throws(RingError) -> Outcome {
        if frameGeneration < generation || (frameGeneration == generation && header.sequence < sequence) {
            return .dropped(generation: frameGeneration, sequence: header.sequence)
        }
        if frameGeneration > generation {
            throw .newerGeneration(rank: previousRank, found: frameGeneration, current: generation)
        }
        let expected = try admit(header: header, data: data)
        RingMachine.apply(expected.operation, data, to: UnsafeMutableBufferPointer(rebasing: buffer[expected.transfer.range]))
        return .applied(forward: expected.forward.map { send(for: $0, buffer: UnsafeBufferPointer(buffer)) })
    }

    /// Checks a piece already known to belong to this collective (run, generation and sequence)
    /// against the plan, and its data against its checksum; on success the machine moves on and
    /// returns the receive the piece fulfils, which the caller then applies (and forwards).
    ///
    /// A piece of this collective that does not match the plan is an error, not a drop: the
    /// header carries this run's id under the frame's checksum, so a process of this run sent
    /// it, and a participant that disagrees on the schedule (another length, piece size or
    /// order of collectives) never sends the expected piece. Waiting would leave both ranks
    /// waiting on each other while the liveness hook calls them alive; failing names the rank
    /// and lets the coordinator form a new generation. The same holds for a data checksum
    /// mismatch: no other copy of the piece will come.
    mutating func admit(header: RingChunkHeader, data: UnsafeRawBufferPointer) throws(RingError) -> RingReceive {
        guard let expected = nextReceive else {
            throw .unexpectedPiece(rank: previousRank, expected: "nothing (collective \(sequence) complete)", found: describe(header))
        }
        let expectedSource = plan.collective == .broadcast ? plan.root : previousRank
        let range = expected.transfer.range
        guard header.collective == plan.collective, header.sequence == sequence,
              header.sourceRank == UInt32(expectedSource), header.ringStep == UInt32(expected.transfer.step),
              header.piece == UInt32(expected.transfer.piece), header.elementOffset == UInt64(range.lowerBound),
              header.elementCount == UInt32(range.count) else {
            throw .unexpectedPiece(rank: previousRank, expected: describe(expected, source: expectedSource), found: describe(header))
        }
        guard data.count == range.count * MemoryLayout<Float>.size else {
            throw .unexpectedPiece(rank: previousRank, expected: "\(range.count * 4) data bytes", found: "\(data.count) data bytes")
        }
        if let checksum = header.dataChecksum {
            let computed = crc32c(data)
            guard computed == checksum else {
                throw .dataChecksum(rank: previousRank, step: expected.transfer.step, piece: expected.transfer.piece,
                                    expected: checksum, computed: computed)
            }
        }
        nextIndex += 1
        return expected
    }

    /// The send of `transfer`, its checksum (when on) taken over the buffer's bytes as they are now.
    func send(for transfer: RingTransfer, buffer: UnsafeBufferPointer<Float>) -> Send {
        let source = plan.collective == .broadcast ? plan.root : rank
        let checksum = checksumsData
            ? crc32c(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[transfer.range])))
            : nil
        let header = RingChunkHeader(collective: plan.collective, sequence: sequence, sourceRank: UInt32(source),
                                     ringStep: UInt32(transfer.step), piece: UInt32(transfer.piece),
                                     elementOffset: UInt64(transfer.range.lowerBound),
                                     elementCount: UInt32(transfer.range.count), dataChecksum: checksum)
        return Send(header: header, range: transfer.range)
    }

    /// `apply` from raw bytes, which may be unaligned (a libzmq message part).
    static func apply(_ operation: RingPieceOperation, _ data: UnsafeRawBufferPointer, to target: UnsafeMutableBufferPointer<Float>) {
        let aligned = Int(bitPattern: data.baseAddress) % MemoryLayout<Float>.alignment == 0
        if aligned, let base = data.baseAddress {
            let incoming = UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: target.count)
            RingMachine.apply(operation, incoming, to: target)
        } else {
            // Rare: libzmq gave an unaligned buffer. Copy into aligned scratch first.
            let scratch = [Float](unsafeUninitializedCapacity: target.count) { storage, count in
                UnsafeMutableRawBufferPointer(storage).copyMemory(from: data)
                count = target.count
            }
            scratch.withUnsafeBufferPointer { RingMachine.apply(operation, $0, to: target) }
        }
    }

    /// The one place where floats are summed: target[i] = target[i] + incoming[i] (or, for
    /// `.overwrite`, target[i] = incoming[i]). `ForwardingKernel` does the same additions.
    public static func apply(_ operation: RingPieceOperation, _ incoming: UnsafeBufferPointer<Float>,
                      to target: UnsafeMutableBufferPointer<Float>) {
        switch operation {
        case .accumulate:
            for index in 0..<target.count { target[index] += incoming[index] }
        case .overwrite:
            if let destination = target.baseAddress, let source = incoming.baseAddress {
                destination.update(from: source, count: target.count)
            }
        }
    }

    private func describe(_ header: RingChunkHeader) -> String {
        "\(header.collective) #\(header.sequence) from \(header.sourceRank) step \(header.ringStep) piece \(header.piece) " +
            "elements \(header.elementOffset)+\(header.elementCount)"
    }

    private func describe(_ receive: RingReceive, source: Int) -> String {
        "\(plan.collective) #\(sequence) from \(source) step \(receive.transfer.step) piece \(receive.transfer.piece) " +
            "elements \(receive.transfer.range.lowerBound)+\(receive.transfer.range.count)"
    }
}
