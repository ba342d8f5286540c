import ArgumentParser
import CommandOptions
import Dataset
import Foundation

struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack an image folder into tar shards of pre-resized JPEGs (WebDataset member names) with an index.",
        discussion: """
            Resizes the shorter side of every image to --size (aspect ratio kept, so random crops \
            remain possible). Files that do not decode are skipped and named. Shards are written \
            sequentially and read as WebDataset tars; `--data DIR` trains on them, reading each \
            image at its indexed offset (one read, no open per file).
            """)

    @Option(help: "Dataset folder: ImageNet layout ROOT/<wnid>/<file> or any folder of images (recursive).")
    var input: String

    @Option(help: "Output folder for the shards and their index.")
    var out: String

    @Option(help: "Shorter side of the packed images, in pixels.")
    var size: Int = 256

    @Option(help: "JPEG quality of the packed images.")
    var quality: Int = 90

    @Option(name: .customLong("shard-mib"), help: "Largest shard, in MiB.")
    var shardMiB: Int = 256

    func validate() throws {
        guard size >= 8 else { throw ValidationError("--size must be at least 8 pixels.") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be between 1 and 100.") }
        guard shardMiB >= 1 else { throw ValidationError("--shard-mib must be at least 1.") }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let index = try DatasetIndex.scan(root: input)
        print("indexed \(index.count) images in \(index.classNames.count) classes under \(input) (fingerprint \(index.fingerprint.prefix(16)))")
        var skipped = 0
        let shards = try ShardPacker.pack(index, to: out, size: size, quality: quality, maximumShardBytes: shardMiB << 20) { failure in
            skipped += 1
            printError("warning: skipped \(failure.path): \(failure.error)")
        }
        print("packed \(shards.count) images into \(Set(shards.entries.map(\.shard)).count) shard(s) in \(out); skipped \(skipped)")
    }
}
