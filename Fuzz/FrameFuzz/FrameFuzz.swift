// libFuzzer entry point for everything in Wire that reads bytes from a peer (compiled
// together with the Wire sources; see Fuzz/README.md).
//
// Properties checked on every input, beyond "never traps":
// - a frame that decodes re-encodes to exactly the same bytes;
// - bytes taken as the payload of the message kind chosen by the first byte either fail with a
//   DecodeError or decode to a message whose encoding is exactly those bytes (this reaches the
//   message decoders without forging a CRC32C);
// - a decoded ring chunk header with arbitrary data, offered to a ring machine of a small
//   all-reduce, is applied, dropped or refused with a RingError; never a trap;
// - tensor chunks go through a TensorAssembler without trapping.

@_cdecl("LLVMFuzzerTestOneInput")
public func frameFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []

    if let envelope = try? Envelope.decode(bytes, limits: DecodeLimits(maxPayloadLength: 1 << 20)) {
        guard envelope.encoded() == bytes else { fatalError("frame re-encodes differently") }
    }

    guard let first = bytes.first else { return 0 }
    let kinds = MessageKind.allCases
    let kind = kinds[Int(first) % kinds.count]
    let payload = Array(bytes.dropFirst())
    guard let message = try? Message.decode(kind: kind, payload: payload) else { return 0 }
    guard message.encodedPayload() == payload else { fatalError("\(kind) payload re-encodes differently") }

    switch message {
    case let .ringChunk(header):
        // The bits of the first byte above the kind choose the frame's generation (0...3).
        offerToRingMachine(header, generation: UInt64((Int(first) / kinds.count) & 3))
    case let .tensorChunk(chunk):
        var assembler = TensorAssembler(maxTotalBytes: 1 << 20)
        _ = try? assembler.add(chunk)
        _ = try? assembler.add(chunk)
    default:
        break
    }
    return 0
}

/// Rank 1 of 3 on a 10-element buffer, expecting generation 1, collective 0.
private func offerToRingMachine(_ header: RingChunkHeader, generation: UInt64) {
    let plan = RingPlan.allReduce(RingSchedule(rank: 1, worldSize: 3, elementCount: 10, pieceElements: 2))
    var machine = RingMachine(plan: plan, rank: 1, worldSize: 3, generation: 1, sequence: 0, checksumsData: true)
    var buffer = [Float](repeating: 1, count: 10)
    // Data as long as the header claims, capped so a hostile count cannot exhaust memory.
    let count = min(Int(header.elementCount), 64)
    let incoming = [Float](repeating: 2, count: count)
    buffer.withUnsafeMutableBufferPointer { target in
        incoming.withUnsafeBytes { raw in
            _ = try? machine.accept(generation: generation, header: header, data: raw, buffer: target)
        }
    }
}
