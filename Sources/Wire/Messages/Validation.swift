/// The figures of one block of validation images on one rank: sums over the block's images, so
/// that the coordinator can add blocks in their order and get the same totals whatever the world
/// size (a block is evaluated in one forward pass and its images never change with N).
public struct ValidationBlock: Equatable, Sendable {
    /// The block's index in the validation set: images `index * blockSize ..< (index + 1) * blockSize`.
    public var index: UInt32
    /// Images of the block that decoded and were evaluated.
    public var images: UInt32
    /// Images of the block that could not be read or decoded (left out of every sum).
    public var skipped: UInt32
    /// Sums over the evaluated images of the per-image loss and its terms, PSNR (dB) and SSIM.
    public var loss: Double
    public var recon: Double
    public var latent: Double
    public var psnr: Double
    public var ssim: Double
    /// Exactly-zero codes and all codes of the block's images (the sparsity is their ratio).
    public var zeroCodes: UInt64
    public var codes: UInt64

    public init(index: UInt32, images: UInt32, skipped: UInt32 = 0, loss: Double, recon: Double, latent: Double,
                psnr: Double, ssim: Double, zeroCodes: UInt64, codes: UInt64) {
        self.index = index
        self.images = images
        self.skipped = skipped
        self.loss = loss
        self.recon = recon
        self.latent = latent
        self.psnr = psnr
        self.ssim = ssim
        self.zeroCodes = zeroCodes
        self.codes = codes
    }

    static let encodedSize = 4 + 4 + 4 + 5 * 8 + 2 * 8

    func encode(into writer: inout ByteWriter) {
        writer.write(index)
        writer.write(images)
        writer.write(skipped)
        for value in [loss, recon, latent, psnr, ssim] { writer.write(value) }
        writer.write(zeroCodes)
        writer.write(codes)
    }

    init(from reader: inout ByteReader) throws(DecodeError) {
        index = try reader.readUInt32("validation.blocks[].index")
        images = try reader.readUInt32("validation.blocks[].images")
        skipped = try reader.readUInt32("validation.blocks[].skipped")
        loss = try reader.readDouble("validation.blocks[].loss")
        recon = try reader.readDouble("validation.blocks[].recon")
        latent = try reader.readDouble("validation.blocks[].latent")
        psnr = try reader.readDouble("validation.blocks[].psnr")
        ssim = try reader.readDouble("validation.blocks[].ssim")
        zeroCodes = try reader.readUInt64("validation.blocks[].zeroCodes")
        codes = try reader.readUInt64("validation.blocks[].codes")
    }
}

/// Worker -> coordinator (since protocol version 6): this rank's part of the validation after
/// `step`, the model in evaluation mode on the rank's blocks of the held-out set; from rank 0
/// also the reconstruction grid (a PNG) of the fixed grid images.
public struct ValidationReport: WirePayload {
    public static let kind = MessageKind.validationReport

    public var rank: UInt32
    /// Steps applied by the evaluated parameters.
    public var step: UInt64
    public var blocks: [ValidationBlock]
    /// How many of this rank's codes were non-zero, per dictionary atom.
    public var atomUsage: [UInt64]
    /// Originals above reconstructions as a PNG (rank 0), else empty.
    public var gridPNG: [UInt8]
    /// Seconds the rank spent evaluating.
    public var seconds: Double

    public init(rank: UInt32, step: UInt64, blocks: [ValidationBlock], atomUsage: [UInt64], gridPNG: [UInt8] = [], seconds: Double = 0) {
        self.rank = rank
        self.step = step
        self.blocks = blocks
        self.atomUsage = atomUsage
        self.gridPNG = gridPNG
        self.seconds = seconds
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(rank)
        writer.write(step)
        writer.writeArray(blocks) { w, block in block.encode(into: &w) }
        writer.writeArray(atomUsage) { w, count in w.write(count) }
        writer.writeBlob(gridPNG)
        writer.write(seconds)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        rank = try reader.readUInt32("validation.rank")
        step = try reader.readUInt64("validation.step")
        blocks = try reader.readArray("validation.blocks", minimumElementSize: ValidationBlock.encodedSize) { r throws(DecodeError) in
            try ValidationBlock(from: &r)
        }
        atomUsage = try reader.readArray("validation.atomUsage", minimumElementSize: 8) { r throws(DecodeError) in
            try r.readUInt64("validation.atomUsage[]")
        }
        gridPNG = try reader.readBlob("validation.gridPNG")
        seconds = try reader.readDouble("validation.seconds")
    }
}
