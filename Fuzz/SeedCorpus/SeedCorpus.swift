// Writes one valid frame per message kind (plus the kind-byte + payload form the fuzzer's
// second path reads) into the directory given as the first argument: the fuzzer's seeds.

@main
struct SeedCorpus {
    static func main() throws {
        guard CommandLine.arguments.count == 2 else {
            print("usage: seed-corpus DIRECTORY")
            return
        }
        let directory = CommandLine.arguments[1]
        let peer = RingPeer(rank: 1, endpoint: "tcp://127.0.0.1:5555", curvePublicKey: String(repeating: "k", count: 40))
        let messages: [Message] = [
            .hello(Hello(workerID: "w0", host: "h", dataPlaneEndpoint: "tcp://127.0.0.1:1", capabilities: ["ipc"],
                         datasetFingerprint: "ff", curvePublicKey: String(repeating: "k", count: 40))),
            .welcome(Welcome(workerID: "w0", heartbeatIntervalMilliseconds: 500, livenessDeadlineMilliseconds: 5000)),
            .refuse(Refuse(reason: .runFull, detail: "full")),
            .assignment(Assignment(rank: 0, worldSize: 2, generation: 1, previous: peer, next: peer, configurationName: "small",
                                   settingsJSON: "{}", cursor: ShardCursor(epoch: 0, step: 0), globalBatch: 16, seed: 1, stateSourceRank: 0)),
            .heartbeat(Heartbeat(sequence: 1, lastAppliedStep: 0)),
            .stepReport(StepReport(rank: 0, epoch: 0, step: 1, lossTerms: [LossTerm(name: "l", value: 1)], goodSamples: 16,
                                   imagesPerSecond: 4, timings: StepTimings(dataSeconds: 0, computeSeconds: 1, allReduceSeconds: 0),
                                   parameterChecksum: 1)),
            .workerStatus(WorkerStatus(workerID: "w0", lastAppliedStep: 1, cursor: ShardCursor(epoch: 0, step: 2), parameterChecksum: 1)),
            .tensorChunk(TensorChunk(transfer: .parameters, step: 1, tensorIndex: 0, tensorCount: 1, name: "t", dtype: .float32,
                                     shape: [2], byteOffset: 0, tensorChecksum: 0, bytes: [0, 0, 128, 63, 0, 0, 0, 64])),
            .checkpoint(CheckpointCommand(action: .upload, step: 1, epoch: 0)),
            .abort(Abort(failedRank: 1, reason: "dead")),
            .shutdown(Shutdown(reason: "done")),
            .ringChunk(RingChunkHeader(collective: .allReduce, sequence: 0, sourceRank: 0, ringStep: 0, piece: 0,
                                       elementOffset: 0, elementCount: 1, dataChecksum: 0)),
        ]
        let kinds = MessageKind.allCases
        for message in messages {
            let frame = Envelope(generation: 1, runID: 2, message: message).encoded()
            try write(frame, to: "\(directory)/frame-\(message.kind)")
            let kindByte = UInt8(kinds.firstIndex(of: message.kind) ?? 0)
            try write([kindByte] + message.encodedPayload(), to: "\(directory)/payload-\(message.kind)")
        }
        // A piece the fuzzer's ring machine (rank 1 of 3, 10 elements, pieces of 2) expects
        // first, in generation 1: first byte = ring kind index + 1 * kind count.
        let data = [Float](repeating: 2, count: 2).withUnsafeBytes { Array($0) }
        let expected = RingChunkHeader(collective: .allReduce, sequence: 0, sourceRank: 0, ringStep: 0, piece: 0,
                                       elementOffset: 0, elementCount: 2, dataChecksum: crc32c(data))
        let ringIndex = kinds.firstIndex(of: .ringChunk) ?? 0
        try write([UInt8(ringIndex + kinds.count)] + expected.encodedPayload(), to: "\(directory)/payload-ringChunk-expected")
        print("wrote \(messages.count * 2 + 1) seeds to \(directory)")
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        guard let file = fopen(path, "wb") else { throw SeedError.cannotOpen(path) }
        defer { fclose(file) }
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw SeedError.cannotOpen(path) }
    }

    enum SeedError: Error { case cannotOpen(String) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
