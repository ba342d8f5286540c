/// Worker -> coordinator, from the worker's heartbeat thread, every `Welcome.heartbeatIntervalMilliseconds`.
public struct Heartbeat: WirePayload {
    public static let kind = MessageKind.heartbeat

    /// Increments by one per heartbeat of a process; a gap means heartbeats were lost.
    public var sequence: UInt64
    /// The last step whose all-gather completed and which the worker applied.
    public var lastAppliedStep: UInt64

    public init(sequence: UInt64, lastAppliedStep: UInt64) {
        self.sequence = sequence
        self.lastAppliedStep = lastAppliedStep
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(sequence)
        writer.write(lastAppliedStep)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        sequence = try reader.readUInt64("heartbeat.sequence")
        lastAppliedStep = try reader.readUInt64("heartbeat.lastAppliedStep")
    }
}

/// One named term of the loss (e.g. "reconstruction", "kl", "sparsity").
public struct LossTerm: Equatable, Sendable {
    public var name: String
    public var value: Double

    public init(name: String, value: Double) {
        self.name = name
        self.value = value
    }
}

/// Seconds a step spent in each phase on one worker.
public struct StepTimings: Equatable, Sendable {
    public var dataSeconds: Double
    public var computeSeconds: Double
    public var allReduceSeconds: Double
    /// All-reduce time that ran while backward was still computing (bucketed overlap).
    public var hiddenAllReduceSeconds: Double

    public init(dataSeconds: Double, computeSeconds: Double, allReduceSeconds: Double, hiddenAllReduceSeconds: Double = 0) {
        self.dataSeconds = dataSeconds
        self.computeSeconds = computeSeconds
        self.allReduceSeconds = allReduceSeconds
        self.hiddenAllReduceSeconds = hiddenAllReduceSeconds
    }
}

/// Worker -> coordinator after each applied step.
public struct StepReport: WirePayload {
    public static let kind = MessageKind.stepReport

    public var rank: UInt32
    public var epoch: UInt64
    public var step: UInt64
    public var lossTerms: [LossTerm]
    /// Samples of this rank's slice that decoded (failed ones are dropped, docs/decisions.md).
    public var goodSamples: UInt32
    public var imagesPerSecond: Double
    public var timings: StepTimings
    /// CRC32C of the flat parameter buffer after the step; equal on every rank or it is an error.
    public var parameterChecksum: UInt32

    public init(rank: UInt32, epoch: UInt64, step: UInt64, lossTerms: [LossTerm], goodSamples: UInt32,
                imagesPerSecond: Double, timings: StepTimings, parameterChecksum: UInt32) {
        self.rank = rank
        self.epoch = epoch
        self.step = step
        self.lossTerms = lossTerms
        self.goodSamples = goodSamples
        self.imagesPerSecond = imagesPerSecond
        self.timings = timings
        self.parameterChecksum = parameterChecksum
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(rank)
        writer.write(epoch)
        writer.write(step)
        writer.writeArray(lossTerms) { w, term in
            w.write(term.name)
            w.write(term.value)
        }
        writer.write(goodSamples)
        writer.write(imagesPerSecond)
        writer.write(timings.dataSeconds)
        writer.write(timings.computeSeconds)
        writer.write(timings.allReduceSeconds)
        writer.write(timings.hiddenAllReduceSeconds)
        writer.write(parameterChecksum)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        rank = try reader.readUInt32("stepReport.rank")
        epoch = try reader.readUInt64("stepReport.epoch")
        step = try reader.readUInt64("stepReport.step")
        lossTerms = try reader.readArray("stepReport.lossTerms", minimumElementSize: 12) { r throws(DecodeError) in
            LossTerm(name: try r.readString("stepReport.lossTerms[].name"),
                     value: try r.readDouble("stepReport.lossTerms[].value"))
        }
        goodSamples = try reader.readUInt32("stepReport.goodSamples")
        imagesPerSecond = try reader.readDouble("stepReport.imagesPerSecond")
        timings = StepTimings(dataSeconds: try reader.readDouble("stepReport.timings.dataSeconds"),
                              computeSeconds: try reader.readDouble("stepReport.timings.computeSeconds"),
                              allReduceSeconds: try reader.readDouble("stepReport.timings.allReduceSeconds"),
                              hiddenAllReduceSeconds: try reader.readDouble("stepReport.timings.hiddenAllReduceSeconds"))
        parameterChecksum = try reader.readUInt32("stepReport.parameterChecksum")
    }
}

/// Worker -> coordinator when a generation breaks or on request: where this replica stands,
/// so the new generation can start from the most advanced one.
public struct WorkerStatus: WirePayload {
    public static let kind = MessageKind.workerStatus

    public var workerID: String
    public var lastAppliedStep: UInt64
    public var cursor: ShardCursor
    public var parameterChecksum: UInt32

    public init(workerID: String, lastAppliedStep: UInt64, cursor: ShardCursor, parameterChecksum: UInt32) {
        self.workerID = workerID
        self.lastAppliedStep = lastAppliedStep
        self.cursor = cursor
        self.parameterChecksum = parameterChecksum
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(workerID)
        writer.write(lastAppliedStep)
        writer.write(cursor.epoch)
        writer.write(cursor.step)
        writer.write(parameterChecksum)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        workerID = try reader.readString("workerStatus.workerID")
        lastAppliedStep = try reader.readUInt64("workerStatus.lastAppliedStep")
        cursor = ShardCursor(epoch: try reader.readUInt64("workerStatus.cursor.epoch"),
                             step: try reader.readUInt64("workerStatus.cursor.step"))
        parameterChecksum = try reader.readUInt32("workerStatus.parameterChecksum")
    }
}
