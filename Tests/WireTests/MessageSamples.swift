@testable import Wire

/// One filled-in example of every message kind, with awkward values (empty, non-ASCII, extremes).
enum MessageSamples {
    static let all: [Message] = [
        .hello(Hello(workerID: "node3-0", host: "node3.example", dataPlaneEndpoint: "tcp://10.0.0.3:41000",
                     capabilities: ["ipc", "curve", "buckets"], datasetFingerprint: "9f86d081884c7d65",
                     curvePublicKey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")),
        .hello(Hello(workerID: "w", host: "", dataPlaneEndpoint: "", capabilities: [], datasetFingerprint: "")),
        .welcome(Welcome(workerID: "node3-0", heartbeatIntervalMilliseconds: 500, livenessDeadlineMilliseconds: 5000)),
        .refuse(Refuse(reason: .datasetMismatch, detail: "fingerprint 1234 differs from the run's abcd — é")),
        .assignment(Assignment(rank: 2, worldSize: 4, generation: 7,
                               previous: RingPeer(rank: 1, endpoint: "tcp://10.0.0.2:41000"),
                               next: RingPeer(rank: 3, endpoint: "ipc:///tmp/r3", curvePublicKey: String(repeating: "x", count: 40)),
                               configurationName: "small", settingsJSON: #"{"lr":0.0003,"optimizer":"adam"}"#,
                               cursor: ShardCursor(epoch: 3, step: 1234), globalBatch: 64, seed: .max, stateSourceRank: 1,
                               stateOrigin: .checkpoint, resumeStep: 1234)),
        .heartbeat(Heartbeat(sequence: 42, lastAppliedStep: 1233)),
        .stepReport(StepReport(rank: 1, epoch: 3, step: 1234,
                               lossTerms: [LossTerm(name: "reconstruction", value: 0.125), LossTerm(name: "kl", value: -.infinity)],
                               goodSamples: 15, imagesPerSecond: 4.1,
                               timings: StepTimings(dataSeconds: 0.1, computeSeconds: 3.9, allReduceSeconds: 0.2, hiddenAllReduceSeconds: 0.15),
                               parameterChecksum: 0xDEAD_BEEF)),
        .workerStatus(WorkerStatus(workerID: "node1-0", lastAppliedStep: 99, cursor: ShardCursor(epoch: 0, step: 100), parameterChecksum: 7)),
        .tensorChunk(TensorChunk(transfer: .optimizerState, step: 9, tensorIndex: 1, tensorCount: 3, name: "m.encoder.conv_in.weight",
                                 dtype: .float32, shape: [4, 3], byteOffset: 16, tensorChecksum: 0x1234_5678,
                                 bytes: (0..<32).map { UInt8($0) })),
        .checkpoint(CheckpointCommand(action: .committed, step: 1000, epoch: 2, path: "/ckpt/step-00001000")),
        .checkpoint(CheckpointCommand(action: .uploadComplete, step: 1000, epoch: 2, optimizerStep: 997)),
        .refuse(Refuse(reason: .notMember, detail: "declared down")),
        .abort(Abort(failedRank: 3, reason: "rank 3 silent for 5 s")),
        .abort(Abort(reason: "operator")),
        .shutdown(Shutdown(exitCode: -1, reason: "done")),
        .ringChunk(RingChunkHeader(collective: .allReduce, sequence: 5, sourceRank: 0, ringStep: 3, piece: 2,
                                   elementOffset: 1 << 40, elementCount: 262_144, dataChecksum: 99)),
        .ringChunk(RingChunkHeader(collective: .broadcast, sequence: 0, sourceRank: 7, ringStep: 0, piece: 0,
                                   elementOffset: 0, elementCount: 0)),
    ]
}
