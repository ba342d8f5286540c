import Images
import TensorFiles

/// Where to pick up reading a tar after a given sample: the state a resumed `scvae pack` starts
/// from.
struct TarResumePoint: Equatable, Sendable {
    /// Offset in the tar of the next member's first header, or, when `inner` is set, of the
    /// first header of the class archive being read.
    var outer: Int
    /// Offset in that class archive of its next member's first header.
    var inner: Int?
    /// Number of the next image (images are numbered from 0 in tar order, failed ones included).
    var nextNumber: Int
    /// Class archives read to their end.
    var classesDone: Int
    /// The source fingerprint's hasher so far (`SHA256.savedState`).
    var fingerprint: String

    static let start = TarResumePoint(outer: 0, inner: nil, nextNumber: 0, classesDone: 0, fingerprint: SHA256().savedState)
}

/// `DIR/pack-journal.txt`, which lets an interrupted `scvae pack` of a tar continue.
///
/// Each shard is written to a temporary name, fsynced and renamed into place (`ShardWriter`);
/// then the journal is rewritten the same way with one more line naming that shard, its size, its
/// checksum and the tar position after its last sample. A rerun with the same arguments checks
/// the first two lines, verifies each journaled shard (size and checksum; the first that fails
/// and those after it are dropped), removes other shard files and temporary files, and reads the
/// tar from the last good position (a seek, plus a seek inside the class archive). What it writes
/// then is byte for byte what an uninterrupted run writes. `index.txt` is written last, then the
/// journal is removed. The text:
///
///     scvae-pack-journal 1
///     input <tar bytes> <SHA-256 of the tar's member list: offset, name, type, size per member>
///     settings size=<S> quality=<Q> shard-bytes=<B> labels=<SHA-256 of the labels file, or ->
///     shard <name> <bytes> <FNV-1a 64 of the bytes, hex> <next image> <outer> <inner, or -> <classes done> <hasher>
///     ...
struct PackJournal: Equatable {
    static let fileName = "pack-journal.txt"
    static let header = "scvae-pack-journal 1"

    struct Shard: Equatable {
        let name: String
        let bytes: Int
        let checksum: UInt64
        /// Where reading continues after this shard's last sample.
        let resume: TarResumePoint
    }

    /// Identifies the tar (size and member list).
    let input: String
    /// Identifies what is made of it.
    let settings: String
    var shards: [Shard] = []

    var text: String {
        var out = "\(Self.header)\ninput \(input)\nsettings \(settings)\n"
        for shard in shards {
            let r = shard.resume
            out += "shard \(shard.name) \(shard.bytes) \(String(shard.checksum, radix: 16)) \(r.nextNumber) \(r.outer) "
                + "\(r.inner.map(String.init) ?? "-") \(r.classesDone) \(r.fingerprint)\n"
        }
        return out
    }

    /// The journal in `text`; the reason when it is not one.
    static func parse(_ text: String) -> Result<PackJournal, TarHeaderProblem> {
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count >= 3, lines[0] == header, lines[1].hasPrefix("input "), lines[2].hasPrefix("settings ") else {
            return .failure(TarHeaderProblem(reason: "not a '\(header)' file"))
        }
        var journal = PackJournal(input: String(lines[1].dropFirst(6)), settings: String(lines[2].dropFirst(9)))
        for (number, line) in lines.dropFirst(3).enumerated() {
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 9, f[0] == "shard", let bytes = Int(f[2]), let checksum = UInt64(f[3], radix: 16),
                  let next = Int(f[4]), let outer = Int(f[5]), let classes = Int(f[7]),
                  f[6] == "-" || Int(f[6]) != nil, SHA256(savedState: f[8]) != nil,
                  f[1] == ShardWriter.shardName(number) else {
                return .failure(TarHeaderProblem(reason: "line \(number + 4) is not a shard record"))
            }
            journal.shards.append(Shard(name: f[1], bytes: bytes, checksum: checksum,
                                        resume: TarResumePoint(outer: outer, inner: Int(f[6]), nextNumber: next,
                                                               classesDone: classes, fingerprint: f[8])))
        }
        return .success(journal)
    }
}

/// FNV-1a, 64 bits: a quick checksum of a shard's bytes (damage, not tampering).
func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }
    return hash
}

extension ShardEntry {
    /// The samples of a shard written by `ShardWriter`, recovered from its bytes: each `.jpg`
    /// member, with the class its `.cls` member numbers in `classes`. Nil when the bytes are not
    /// such a shard.
    static func recovered(fromShard name: String, bytes: [UInt8], classes: [String]) -> [ShardEntry]? {
        guard let members = try? Tar.members(bytes) else { return nil }
        var entries: [ShardEntry] = []
        var i = 0
        while i < members.count {
            let image = members[i]
            guard image.name.hasSuffix(".jpg") else { return nil }
            let key = image.name.dropLast(4)
            var className: String?
            if i + 1 < members.count, members[i + 1].name == key + ".cls" {
                let data = bytes[members[i + 1].dataOffset..<(members[i + 1].dataOffset + members[i + 1].size)]
                guard let number = Int(String(decoding: data, as: UTF8.self)), classes.indices.contains(number) else { return nil }
                className = classes[number]
                i += 1
            }
            entries.append(ShardEntry(shard: name, offset: image.dataOffset, size: image.size, member: image.name, className: className))
            i += 1
        }
        return entries
    }
}
