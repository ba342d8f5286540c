import Testing
@testable import TensorFiles
@testable import Images

/// Builds safetensors bytes from a header text and raw data, as a hostile or foreign writer might.
private func handBuilt(_ header: String, data: [UInt8] = []) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    var out: [UInt8] = []
    for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(headerBytes.count) >> (8 * UInt64(k)))) }
    return out + headerBytes + data
}

private func entry(_ name: String, _ dtype: String = "F32", shape: [Int], _ begin: Int, _ end: Int) -> String {
    "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(begin),\(end)]}"
}

private func decodeError(_ bytes: [UInt8]) -> SafeTensorsError? {
    do {
        _ = try SafeTensors.decode(bytes, source: "f.safetensors")
        return nil
    } catch {
        return error
    }
}

@Suite struct SafeTensorsTests {
    let sample: [NamedTensor] = [
        NamedTensor(name: "encoder.conv_in.weight", shape: [2, 3], floats: [1, -2, 3.5, 0, .infinity, -0.25]),
        NamedTensor(name: "a.bias", shape: [3], floats: [7, 8, 9]),
        NamedTensor(name: "scalar", shape: [], floats: [42]),
        NamedTensor(name: "empty", shape: [0, 4], floats: []),
        NamedTensor(name: "half", shape: [2], dtype: .F16, data: [0x00, 0x3C, 0x00, 0xC0]),
        NamedTensor(name: "step", shape: [1], dtype: .I64, data: [5, 0, 0, 0, 0, 0, 0, 0]),
    ]

    @Test func roundTripInMemoryKeepsEveryTensorAndTheMetadata() throws {
        let metadata = ["step": "120", "epoch": "3", "config": "{\"size\":64}"]
        let bytes = try SafeTensors.encode(sample, metadata: metadata)
        let file = try SafeTensors.decode(bytes)
        #expect(file.metadata == metadata)
        #expect(file.tensors.count == sample.count)
        for tensor in sample {
            #expect(file[tensor.name] == tensor)
        }
        #expect(try file.tensor(named: "a.bias").floats() == [7, 8, 9])
        #expect(try SafeTensors.encode(file.tensors, metadata: file.metadata) == bytes, "re-encoding is byte-identical")
    }

    @Test func roundTripThroughAFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("model.safetensors")
        try SafeTensors.write(sample, metadata: ["step": "1"], to: path)
        let file = try SafeTensors.read(path)
        #expect(file.metadata == ["step": "1"])
        #expect(file["encoder.conv_in.weight"] == sample[0])
    }

    @Test func headerIsByteExactAndPaddedToEight() throws {
        let tensor = NamedTensor(name: "w", shape: [2], floats: [1, 2])
        let bytes = try SafeTensors.encode([tensor], metadata: ["step": "3"])
        let expectedHeader = #"{"__metadata__":{"step":"3"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let padding = (8 - expectedHeader.utf8.count % 8) % 8
        let header = expectedHeader + String(repeating: " ", count: padding)
        #expect(Array(bytes[0..<8]) == [UInt8(header.utf8.count), 0, 0, 0, 0, 0, 0, 0])
        #expect(String(decoding: bytes[8..<(8 + header.utf8.count)], as: UTF8.self) == header)
        #expect(Array(bytes[(8 + header.utf8.count)...]) == [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40], "1.0 and 2.0 little-endian")
    }

    @Test func tensorsAreLaidOutLargestTypeFirstThenByName() throws {
        let tensors = [
            NamedTensor(name: "a", shape: [1], dtype: .F16, data: [0, 0x3C]),
            NamedTensor(name: "c", shape: [1], floats: [1]),
            NamedTensor(name: "b", shape: [1], floats: [2]),
            NamedTensor(name: "d", shape: [1], dtype: .F64, data: [UInt8](repeating: 0, count: 8)),
        ]
        let file = try SafeTensors.decode(try SafeTensors.encode(tensors))
        #expect(file.tensors.map(\.name) == ["d", "b", "c", "a"])
    }

    @Test func readsAHeaderWrittenByAnotherTool() throws {
        // Spaces, a different key order and metadata last, as other writers may produce.
        let header = #"{"b": {"shape": [1], "data_offsets": [4, 8], "dtype": "F32"}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"format": "pt"}}   "#
        let data: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0]
        let file = try SafeTensors.decode(handBuilt(header, data: data))
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensors.map(\.name) == ["a", "b"])
        #expect(try file.tensor(named: "b").floats() == [-2])
    }

    @Test func halfAndDoublePrecisionAreRecognisedAndConverted() throws {
        let half = NamedTensor(name: "h", shape: [4], dtype: .F16, data: [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x01, 0x00])
        #expect(throws: SafeTensorsError.notFloat32(tensor: "h", dtype: "F16")) { try half.floats() }
        #expect(try half.convertedToFloats() == [1, -2, 0.5, 0x1p-24])
        let brain = NamedTensor(name: "b", shape: [1], dtype: .BF16, data: [0x80, 0x3F])
        #expect(try brain.convertedToFloats() == [1])
        var doubleBytes: [UInt8] = []
        withUnsafeBytes(of: Double(-3.25).bitPattern.littleEndian) { doubleBytes = Array($0) }
        #expect(try NamedTensor(name: "d", shape: [1], dtype: .F64, data: doubleBytes).convertedToFloats() == [-3.25])
    }

    @Test func everyPrefixOfAValidFileIsATypedError() throws {
        let bytes = try SafeTensors.encode(sample, metadata: ["step": "9"])
        for length in 0..<bytes.count {
            #expect(decodeError(Array(bytes[0..<length])) != nil, "prefix of \(length) bytes")
        }
    }

    @Test func malformedFilesAreNamedTypedErrors() {
        let file = "f.safetensors"
        #expect(decodeError([1, 2, 3]) == .truncated(file: file, size: 3))
        #expect(decodeError([100, 0, 0, 0, 0, 0, 0, 0, 0x7B]) == .headerLengthBeyondFile(file: file, headerLength: 100, fileSize: 9))
        #expect(decodeError([0, 0, 0, 0, 0, 0, 0, 0x80]) == .headerTooLarge(file: file, headerLength: 1 << 63))
        if case .malformedHeader(let name, _)? = decodeError(handBuilt("{\"a\": ")) {
            #expect(name == file)
        } else {
            Issue.record("bad JSON must be malformedHeader")
        }
        if case .malformedHeader? = decodeError(handBuilt("[1, 2]")) {} else { Issue.record("array header") }
        if case .malformedHeader? = decodeError(handBuilt("{\"a\": 3}")) {} else { Issue.record("entry not object") }
        if case .malformedHeader? = decodeError(handBuilt("{\(entry("a", shape: [1], -4, 0))}")) {} else { Issue.record("negative offset") }
        if case .malformedHeader? = decodeError(handBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0])) {} else {
            Issue.record("fractional shape")
        }
        if case .malformedHeader? = decodeError(handBuilt("{\"__metadata__\":{\"step\":3}}")) {} else { Issue.record("metadata value not a string") }

        #expect(decodeError(handBuilt("{\(entry("a", "Q7", shape: [1], 0, 4))}", data: [0, 0, 0, 0]))
                == .unknownDType(file: file, tensor: "a", dtype: "Q7"))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [1], 0, 4)),\(entry("a", shape: [1], 4, 8))}", data: [UInt8](repeating: 0, count: 8)))
                == .duplicateTensor(file: file, tensor: "a"))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [2], 0, 8))}", data: [0, 0, 0, 0]))
                == .offsetsOutOfRange(file: file, tensor: "a", begin: 0, end: 8, dataSize: 4))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [0], 4, 0))}", data: [0, 0, 0, 0]))
                == .offsetsOutOfRange(file: file, tensor: "a", begin: 4, end: 0, dataSize: 4))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [2], 0, 8)),\(entry("b", shape: [1], 4, 8))}", data: [UInt8](repeating: 0, count: 8)))
                == .overlappingData(file: file, tensor: "b", other: "a"))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [1], 4, 8))}", data: [UInt8](repeating: 0, count: 8)))
                == .gapInData(file: file, tensor: "a", unusedBytes: 4))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [1], 0, 4))}", data: [UInt8](repeating: 0, count: 6)))
                == .trailingData(file: file, unusedBytes: 2))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [3], 0, 8))}", data: [UInt8](repeating: 0, count: 8)))
                == .sizeMismatch(file: file, tensor: "a", expectedBytes: 12, actualBytes: 8))
        #expect(decodeError(handBuilt("{\(entry("a", shape: [Int.max, 4], 0, 8))}", data: [UInt8](repeating: 0, count: 8)))
                == .sizeMismatch(file: file, tensor: "a", expectedBytes: -1, actualBytes: 8))
    }

    @Test func deeplyNestedHeaderIsRefusedNotACrash() {
        let header = String(repeating: "[", count: 100_000)
        if case .malformedHeader? = decodeError(handBuilt(header)) {} else { Issue.record("deep nesting") }
    }

    @Test func inconsistentTensorsAreRefusedWhenWriting() {
        #expect(throws: SafeTensorsError.sizeMismatch(file: "<memory>", tensor: "w", expectedBytes: 12, actualBytes: 8)) {
            try SafeTensors.encode([NamedTensor(name: "w", shape: [3], floats: [1, 2])])
        }
        #expect(throws: SafeTensorsError.duplicateTensor(file: "<memory>", tensor: "w")) {
            try SafeTensors.encode([NamedTensor(name: "w", shape: [1], floats: [1]), NamedTensor(name: "w", shape: [1], floats: [2])])
        }
        #expect(throws: SafeTensorsError.self) {
            try SafeTensors.encode([NamedTensor(name: "__metadata__", shape: [1], floats: [1])])
        }
    }

    @Test func missingFileAndMissingTensorNameTheFile() throws {
        #expect(throws: SafeTensorsError.self) { try SafeTensors.read("/nonexistent/model.safetensors") }
        let file = try SafeTensors.decode(try SafeTensors.encode(sample))
        #expect(throws: SafeTensorsError.missingTensor(file: "ckpt", tensor: "nope")) { try file.tensor(named: "nope", file: "ckpt") }
    }

    @Test func jsonStringsWithEscapesRoundTrip() throws {
        let metadata = ["note": "quote \" backslash \\ newline \n tab \t bell \u{07} é 漢 🙂"]
        let file = try SafeTensors.decode(try SafeTensors.encode([], metadata: metadata))
        #expect(file.metadata == metadata)
        let parsed = try JSONValue.parse(Array(#""\u00e9\ud83d\ude42""#.utf8))
        #expect(parsed == .string("é🙂"))
    }

    @Test func tensorChecksumIsCRC32C() {
        // The standard CRC-32C check value: "123456789" -> 0xE3069283.
        #expect(NamedTensor(name: "t", shape: [9], dtype: .U8, data: Array("123456789".utf8)).crc32c == 0xE306_9283)
        #expect(NamedTensor(name: "e", shape: [0], floats: []).crc32c == 0)
    }

    /// Damaged files never trap: each either fails with a typed error or decodes to tensors whose
    /// byte counts fit their shapes (a flipped byte in the data itself is not the codec's to see).
    @Test func randomCorruptionsNeverTrap() throws {
        let bytes = try SafeTensors.encode(sample, metadata: ["step": "4"])
        var random = KeyedRandom(key: 17)
        var refused = 0, decoded = 0
        for _ in 0..<2000 {
            var damaged = bytes
            for _ in 0..<(1 + random.below(4)) {
                damaged[random.below(damaged.count)] = UInt8(random.below(256))
            }
            do {
                let file = try SafeTensors.decode(damaged)
                decoded += 1
                for tensor in file.tensors {
                    #expect(tensor.data.count == tensor.shape.reduce(tensor.dtype.byteSize, *), "\(tensor.name) \(tensor.shape)")
                }
            } catch {
                refused += 1
            }
        }
        #expect(refused + decoded == 2000)
        #expect(refused > 0 && decoded > 0, "both outcomes occur: \(refused) refused, \(decoded) decoded")
    }
}
