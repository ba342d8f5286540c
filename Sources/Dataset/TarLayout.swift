import Images
import TensorFiles

/// How `scvae pack` reads a tar of images (decisions only; no I/O).
///
/// Every image member gets the relative path it would have in the equivalent extracted folder,
/// and then the same treatment as that folder's file (DatasetIndex.swift): its class is the
/// first folder of that path, samples are numbered in order, and the source fingerprint hashes
/// "<path>\t<size>\n" per image. So a tar whose members are in byte order of their names packs
/// exactly as its extraction does (the same index.txt, the same shards).
///
/// - A member of the tar (the outer archive) whose name ends in ".tar" (any case) is a class
///   archive: it is read as a tar in place (never extracted), its file name without ".tar" is the
///   class, and an image `F` in it has the path `<class>/F`. This is ILSVRC2012_img_train.tar:
///   `n01440764.tar` holding `n01440764_10026.JPEG` becomes `n01440764/n01440764_10026.JPEG`.
///   An archive inside a class archive is skipped and named.
/// - An image directly in the tar keeps its path: `n01440764/x.JPEG` is in class n01440764 (a tar
///   of an extracted folder), `ILSVRC2012_val_00000001.JPEG` has no class (the validation tar),
///   unless `--labels` gives one (`TarLabels`), which makes the path `<label>/<name>`.
/// - Images are names ending in .jpg, .jpeg or .png (any case). Leading "./" and empty
///   components are dropped. Members with a component starting with "." (hidden files, macOS
///   `._` files) and directories are ignored, as the folder scan ignores them. Other members (not
///   images, links, devices, names that are not UTF-8 or that hold "..") are skipped and named.
enum TarLayout {
    /// What a member is to the packer.
    enum Role: Equatable {
        /// A tar of one class's images (outer members only).
        case classArchive(className: String)
        /// An image, with its path in the equivalent folder.
        case image(path: String)
        /// Left out, with the reason to tell the user.
        case skipped(reason: String)
        /// Left out silently (directories, hidden files), as the folder scan does.
        case ignored
    }

    /// The role of `entry`, a member of the tar itself (`className` nil) or of the class archive
    /// of `className`.
    static func role(of entry: TarEntry, inClass className: String? = nil) -> Role {
        if entry.kind == .directory { return .ignored }
        guard let name = entry.name else { return .skipped(reason: "its name is not valid UTF-8") }
        let components = name.split(separator: "/").filter { $0 != "." }
        guard let last = components.last else { return .ignored }
        if components.contains(where: { $0.hasPrefix(".") && $0 != ".." }) { return .ignored }
        if components.contains("..") { return .skipped(reason: "its name contains '..'") }
        let isArchive = last.lowercased().hasSuffix(".tar")
        let isImage = DatasetIndex.isImageName(String(last))
        guard case .regular = entry.kind else {
            if case .other(let flag) = entry.kind, isImage || isArchive {
                return .skipped(reason: "not a regular file (tar typeflag '\(flag)': a link or a special file)")
            }
            return .ignored
        }
        if isArchive {
            guard className == nil else { return .skipped(reason: "an archive inside a class archive is not read") }
            return .classArchive(className: String(last.dropLast(4)))
        }
        guard isImage else { return .skipped(reason: "not an image (.jpg, .jpeg, .png) or a class archive (.tar)") }
        let path = components.joined(separator: "/")
        return .image(path: className.map { $0 + "/" + path } ?? path)
    }

    /// The class of a path: its first folder, as `DatasetSample.className`.
    static func className(ofPath path: String) -> String? {
        DatasetSample(path: path, size: 0).className
    }

    /// Class names sorted by their bytes, the numbering the folder pack gives.
    static func sortedClasses(_ names: some Sequence<String>) -> [String] {
        Set(names).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The largest image member read (larger ones are skipped, named): far above any photo.
    static let maximumImageBytes = 256 << 20
}

/// `--labels FILE`: the classes of the images directly in the tar that have no folder (the
/// validation tar). UTF-8 text, one class name per line (a final newline optional, "\r\n"
/// accepted), line k for the k-th of those images in byte order of their names: for ImageNet,
/// the devkit's ILSVRC2012_validation_ground_truth.txt with each class number replaced by its
/// wnid. A name is not empty, holds no "/" or tab and does not start with ".".
enum TarLabels {
    /// Image name to class, for `names` (any order); the reason when the text does not fit.
    static func parse(_ text: String, names: [String]) -> Result<[String: String], TarHeaderProblem> {
        // By bytes: as Characters, "\r\n" is one and would not split at "\n".
        var lines = Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        let sorted = names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        guard lines.count == sorted.count else {
            return .failure(TarHeaderProblem(reason: "\(lines.count) lines for \(sorted.count) images without a folder in the tar; one line per image is needed"))
        }
        var labels: [String: String] = [:]
        for (number, (name, label)) in zip(sorted, lines).enumerated() {
            guard !label.isEmpty, !label.contains("/"), !label.contains("\t"), !label.hasPrefix(".") else {
                return .failure(TarHeaderProblem(reason: "line \(number + 1) ('\(label)') is not a class name (empty, or holds '/' or a tab, or starts with '.')"))
            }
            labels[name] = label
        }
        return .success(labels)
    }
}
