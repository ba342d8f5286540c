import Images
import TensorFiles
/// `scvae pack`: resizes every image of a folder so its shorter side is S (aspect kept, so random
/// crops remain possible), re-encodes it as JPEG and writes shards.
public enum ShardPacker {
    public static func pack(_ index: DatasetIndex, to directory: String, size: Int, quality: Int = 90,
                            maximumShardBytes: Int = 256 << 20,
                            onFailure: (SampleFailure) -> Void = { _ in }) throws(ShardError) -> ShardSet {
        let writer = try ShardWriter(directory: directory, maximumShardBytes: maximumShardBytes)
        let classes = index.classNames
        let classNumbers = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let decoder = ImageDecoder()
        for i in 0..<index.count {
            let sample = index.samples[i]
            let jpeg: [UInt8]
            do {
                jpeg = try packedJPEG(try index.readBytes(of: i), file: index.path(of: i), size: size, quality: quality,
                                      decoder: decoder)
            } catch {
                onFailure(SampleFailure(sampleIndex: i, path: index.path(of: i), error: error))
                continue
            }
            try writer.add(key: key(index: i, path: sample.path), jpeg: jpeg,
                           classIndex: sample.className.flatMap { classNumbers[$0] }, className: sample.className)
        }
        return try writer.finish(sourceFingerprint: index.fingerprint, size: size)
    }

    /// The image in `bytes` with its shorter side resized to `size`, as a JPEG of `quality`: what
    /// a shard holds for it. `file` names it in errors.
    static func packedJPEG(_ bytes: [UInt8], file: String, size: Int, quality: Int,
                           decoder: ImageDecoder) throws(ImageError) -> [UInt8] {
        let image = try decoder.decode(bytes, file: file, shorterSideAtLeast: size)
        let target = sizeWithShorterSide(width: image.width, height: image.height, shorterSide: size)
        return try encodeJPEG(resize(image, width: target.width, height: target.height), quality: quality)
    }

    /// `<8-digit index>_<file name without extension, dots as underscores>`.
    static func key(index: Int, path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        let stem = file.lastIndex(of: ".").map { String(file[..<$0]) } ?? file
        let digits = String(index)
        let number = String(repeating: "0", count: max(0, 8 - digits.count)) + digits
        let safe = String(stem.map { $0 == "." ? "_" : $0 }.prefix(80))
        return number + "_" + safe
    }
}
