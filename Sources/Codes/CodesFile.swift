import Foundation
import TensorFiles

/// A file of codes (`scvae encode`): safetensors holding the sparse codes of a list of images.
///
/// Tensors (rows r = image * P + y * s + x, P = s * s latent positions):
///   offsets  I64 [N * P + 1]  row r's entries are offsets[r] ..< offsets[r + 1]
///   indices  U16 [nnz]        atom of each entry, ascending within a row
///   values   F32 [nnz]        its value (never 0)
/// Metadata: format "scvae-codes", version "1", config, image_size, latent_side, atoms,
/// weights_sha256 (SHA-256 of the weights file), weights_file, files (JSON list of the sources).
public struct CodesFile: Equatable, Sendable {
    public static let format = "scvae-codes"
    public static let version = "1"

    public var codes: SparseCodes
    /// Configuration name of the weights that made the codes.
    public var config: String
    public var imageSize: Int
    /// Latent grid side s.
    public var latentSide: Int
    /// Source of each image, in row order.
    public var files: [String]
    public var weightsFingerprint: String
    public var weightsFile: String

    public init(codes: SparseCodes, config: String, imageSize: Int, latentSide: Int, files: [String],
                weightsFingerprint: String, weightsFile: String) {
        precondition(codes.rowCount == files.count * latentSide * latentSide, "CodesFile: rows do not match the files")
        self.codes = codes
        self.config = config
        self.imageSize = imageSize
        self.latentSide = latentSide
        self.files = files
        self.weightsFingerprint = weightsFingerprint
        self.weightsFile = weightsFile
    }

    public var positions: Int { latentSide * latentSide }
    public var imageCount: Int { files.count }

    /// Image i's dense codes [P, K].
    public func imageCodes(_ i: Int) -> [Float] {
        codes.dense(rows: (i * positions)..<((i + 1) * positions))
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let fileList = String(decoding: try encoder.encode(files), as: UTF8.self)
        let metadata = [
            "format": Self.format, "version": Self.version, "config": config, "image_size": "\(imageSize)",
            "latent_side": "\(latentSide)", "atoms": "\(codes.atoms)", "weights_sha256": weightsFingerprint,
            "weights_file": weightsFile, "files": fileList,
        ]
        let tensors = [
            NamedTensor(name: "offsets", shape: [codes.offsets.count], dtype: .I64,
                        data: codes.offsets.map { Int64($0).littleEndian }.withUnsafeBytes { Array($0) }),
            NamedTensor(name: "indices", shape: [codes.indices.count], dtype: .U16,
                        data: codes.indices.map(\.littleEndian).withUnsafeBytes { Array($0) }),
            NamedTensor(name: "values", shape: [codes.values.count], floats: codes.values),
        ]
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// Reads and checks a codes file; anything that is not one is an error naming `path`.
    public static func read(_ path: String) throws(CodesError) -> CodesFile {
        let file: SafeTensorsFile
        do { file = try SafeTensors.read(path) } catch { throw .codesFile(path: path, reason: error.description) }
        func fail(_ reason: String) -> CodesError { .codesFile(path: path, reason: reason) }
        let meta = file.metadata
        guard meta["format"] == format else { throw fail("not a codes file (metadata format is not \(format))") }
        guard meta["version"] == version else { throw fail("version \(meta["version"] ?? "none"), this scvae reads \(version)") }
        func number(_ key: String) throws(CodesError) -> Int {
            guard let text = meta[key], let value = Int(text), value > 0 else { throw fail("metadata \(key) is missing or not a positive integer") }
            return value
        }
        let imageSize = try number("image_size"), latentSide = try number("latent_side"), atoms = try number("atoms")
        guard let config = meta["config"], let fingerprint = meta["weights_sha256"] else { throw fail("metadata lacks config or weights_sha256") }
        guard let listText = meta["files"], let files = try? JSONDecoder().decode([String].self, from: Data(listText.utf8)) else {
            throw fail("metadata files is not a JSON list of names")
        }
        func tensor(_ name: String, _ dtype: TensorDType) throws(CodesError) -> NamedTensor {
            guard let t = file[name] else { throw fail("no tensor \(name)") }
            guard t.dtype == dtype, t.shape.count == 1 else { throw fail("\(name) is \(t.dtype.rawValue) \(t.shape), expected 1-D \(dtype.rawValue)") }
            return t
        }
        let offsets = try tensor("offsets", .I64).data.withUnsafeBytes { raw in
            raw.bindMemory(to: Int64.self).map { Int(Int64(littleEndian: $0)) }
        }
        let indices = try tensor("indices", .U16).data.withUnsafeBytes { raw in
            raw.bindMemory(to: UInt16.self).map { UInt16(littleEndian: $0) }
        }
        let values: [Float]
        do { values = try tensor("values", .F32).floats() } catch { throw fail("\(error)") }
        guard offsets.count == files.count * latentSide * latentSide + 1 else {
            throw fail("\(offsets.count - 1) rows for \(files.count) images of \(latentSide)x\(latentSide) positions")
        }
        let codes: SparseCodes
        do { codes = try SparseCodes(atoms: atoms, offsets: offsets, indices: indices, values: values) } catch {
            throw fail(error.reason)
        }
        return CodesFile(codes: codes, config: config, imageSize: imageSize, latentSide: latentSide, files: files,
                         weightsFingerprint: fingerprint, weightsFile: meta["weights_file"] ?? "")
    }

    /// Refuses to pair these codes (read from `path`) with weights other than the ones that made them.
    public func check(against weights: TrainedWeights, path: String) throws(CodesError) {
        guard config == weights.config.name else {
            throw .codesMismatch(path: path, reason: "made with configuration \(config), not \(weights.config.name) (--config)")
        }
        guard weightsFingerprint == weights.fingerprint else {
            throw .codesMismatch(path: path, reason: "made with other weights (\(weightsFile), SHA-256 \(weightsFingerprint.prefix(12))...), not \(weights.path) (SHA-256 \(weights.fingerprint.prefix(12))...)")
        }
        guard imageSize == weights.config.imageSize, latentSide == weights.config.latentSize, codes.atoms == weights.config.atoms else {
            throw .codesMismatch(path: path, reason: "its shapes (image \(imageSize), latent \(latentSide), \(codes.atoms) atoms) are not those of \(weights.config.name)")
        }
    }
}
