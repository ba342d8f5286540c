import TensorFiles
import Model

/// Errors of reading or writing model weights; each names the file.
public enum WeightsFileError: Error, CustomStringConvertible {
    /// The file could not be read or parsed as safetensors.
    case unreadable(path: String, reason: String)
    /// A tensor the configuration needs is missing or has the wrong shape.
    case mismatch(path: String, reason: String)
    /// A tensor is not float32 (and cannot be converted).
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read weights \(path): \(reason)"
        case let .mismatch(path, reason): return "weights \(path) do not fit the configuration: \(reason)"
        case let .unsupported(path, reason): return "weights \(path): \(reason)"
        }
    }
}

/// Weights as safetensors with the reference model's names (docs/model.md), so files move between scvae and PyTorch.
public enum WeightsFile {
    /// Reads `path` into a new flat buffer of `layout`. Unknown names are returned (to warn about),
    /// a missing or mis-shaped required tensor is an error naming it.
    public static func load(_ path: String, layout: ParameterLayout) throws -> (parameters: [Float], unknownNames: [String], metadata: [String: String]) {
        let file: SafeTensorsFile
        do { file = try SafeTensors.read(path) } catch { throw WeightsFileError.unreadable(path: path, reason: "\(error)") }
        var tensors: [String: TensorValues] = [:]
        for tensor in file.tensors {
            // Unknown names are not converted: they may be of any dtype (the authors' extras).
            guard layout[tensor.name] != nil else {
                tensors[tensor.name] = TensorValues(shape: tensor.shape, values: [])
                continue
            }
            do {
                tensors[tensor.name] = TensorValues(shape: tensor.shape, values: try tensor.convertedToFloats())
            } catch {
                throw WeightsFileError.unsupported(path: path, reason: "\(error)")
            }
        }
        var parameters = [Float](repeating: 0, count: layout.totalCount)
        do {
            let unknown = try parameters.withUnsafeMutableBufferPointer {
                try loadParameters(tensors, into: $0, layout: layout)
            }
            return (parameters, unknown, file.metadata)
        } catch {
            throw WeightsFileError.mismatch(path: path, reason: "\(error)")
        }
    }

    /// The flat buffer as named float32 tensors, in layout order.
    public static func namedTensors(_ parameters: [Float], layout: ParameterLayout, prefix: String = "") -> [NamedTensor] {
        parameters.withUnsafeBufferPointer { buffer in
            exportParameters(buffer, layout: layout, prefix: prefix).map {
                NamedTensor(name: $0.name, shape: $0.tensor.shape, floats: $0.tensor.values)
            }
        }
    }

    /// Writes the flat buffer as safetensors at `path` (atomically), with string metadata.
    public static func save(_ parameters: [Float], layout: ParameterLayout, to path: String,
                            metadata: [String: String] = [:]) throws {
        try SafeTensors.write(namedTensors(parameters, layout: layout), metadata: metadata, to: path)
    }
}
