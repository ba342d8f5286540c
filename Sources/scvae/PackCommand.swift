import ArgumentParser
import CommandOptions
import Dataset
import Foundation

struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack an image folder or a tar of images into tar shards of pre-resized JPEGs (WebDataset member names) with an index.",
        discussion: """
            Resizes the shorter side of every image to --size (aspect ratio kept, so random crops \
            remain possible). Files that do not decode are skipped and named. Shards are written \
            sequentially and read as WebDataset tars; `--data DIR` trains on them, reading each \
            image at its indexed offset (one read, no open per file).

            A tar input (ILSVRC2012_img_train.tar: a tar of <wnid>.tar class archives; or a tar \
            of images, like ILSVRC2012_img_val.tar) is read in place, streamed, never extracted, \
            and packs as its extracted folder would. --threads workers decode and encode; the \
            output does not depend on their number. An interrupted tar pack run again with the \
            same arguments continues where it stopped (pack-journal.txt in the output folder).
            """)

    @Option(help: "Dataset folder (ImageNet layout ROOT/<wnid>/<file>, or any folder of images, recursive), or a tar of class tars or of images.")
    var input: String

    @Option(help: "Output folder for the shards and their index.")
    var out: String

    @Option(help: "Shorter side of the packed images, in pixels.")
    var size: Int = 256

    @Option(help: "JPEG quality of the packed images.")
    var quality: Int = 90

    @Option(name: .customLong("shard-mib"), help: "Largest shard, in MiB.")
    var shardMiB: Int = 256

    @Option(help: "Tar input: decoding threads (default: the usable cores).")
    var threads: Int?

    @Option(help: "Tar input: classes of the images directly in the tar, one per line, in byte order of their names (docs/data.md).")
    var labels: String?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        guard size >= 8 else { throw ValidationError("--size must be at least 8 pixels.") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be between 1 and 100.") }
        guard shardMiB >= 1 else { throw ValidationError("--shard-mib must be at least 1.") }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isFolder), !isFolder.boolValue {
            try packTar()
            return
        }
        if labels != nil { throw ValidationError("--labels applies to a tar input; \(input) is a folder.") }
        let index = try DatasetIndex.scan(root: input)
        print("indexed \(index.count) images in \(index.classNames.count) classes under \(input) (fingerprint \(index.fingerprint.prefix(16)))")
        var skipped = 0
        let shards = try ShardPacker.pack(index, to: out, size: size, quality: quality, maximumShardBytes: shardMiB << 20) { failure in
            skipped += 1
            printError("warning: skipped \(failure.path): \(failure.error)")
        }
        print("packed \(shards.count) images into \(Set(shards.entries.map(\.shard)).count) shard(s) in \(out); skipped \(skipped)")
    }

    private func packTar() throws {
        let settings = TarPacker.Settings(size: size, quality: quality, maximumShardBytes: shardMiB << 20,
                                          threads: threads ?? ProcessInfo.processInfo.activeProcessorCount, labelsPath: labels)
        var skipped = 0, failed = 0
        let shards = try TarPacker.pack(tar: input, to: out, settings: settings) { event in
            switch event {
            case let .skipped(member, reason):
                skipped += 1
                printError("warning: skipped \(member): \(reason)")
            case .failed(let failure):
                failed += 1
                printError("warning: skipped \(failure.path): \(failure.error)")
            case .progress(let progress):
                printError(progress.line)
            case let .resumed(count, nextImage):
                printError("resuming: \(count) shard(s) verified; continuing at image \(nextImage)")
            case .alreadyComplete:
                printError("\(out) already holds a finished pack (index.txt); remove it to pack again")
            }
        }
        print("packed \(shards.count) images in \(Set(shards.entries.compactMap(\.className)).count) classes into "
              + "\(Set(shards.entries.map(\.shard)).count) shard(s) in \(out); \(failed) image(s) did not decode, "
              + "\(skipped) other member(s) skipped (source fingerprint \(shards.sourceFingerprint.prefix(16)))")
    }
}
