import Testing
@testable import TensorFiles

/// Builds a .npy file by hand: version, raw header text (padded here only if asked) and data.
private func handBuiltNPY(major: UInt8 = 1, header: String, data: [UInt8]) -> [UInt8] {
    let text = Array(header.utf8)
    var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
    if major == 1 {
        out += [UInt8(text.count & 0xFF), UInt8(text.count >> 8)]
    } else {
        out += [UInt8(text.count & 0xFF), UInt8((text.count >> 8) & 0xFF), 0, 0]
    }
    return out + text + data
}

private func floatBytes(_ values: [Float]) -> [UInt8] {
    values.withUnsafeBytes { Array($0) }
}

private func npyError(_ bytes: [UInt8]) -> NPYError? {
    do {
        _ = try NPY.decode(bytes, source: "x.npy")
        return nil
    } catch {
        return error
    }
}

@Suite struct NPYTests {
    @Test func writesExactlyWhatNumpySaveWrites() throws {
        // numpy.save(f, np.array([[1, 2, 3], [4, 5, 6]], dtype='<f4')) writes this header.
        let bytes = try NPY.encode(NPYArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        let header = dict + String(repeating: " ", count: 128 - 10 - dict.utf8.count - 1) + "\n"
        #expect(bytes.count == 128 + 24)
        #expect(Array(bytes[0..<10]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0])
        #expect(String(decoding: bytes[10..<128], as: UTF8.self) == header)
        #expect(Array(bytes[128...]) == floatBytes([1, 2, 3, 4, 5, 6]))
    }

    @Test func shapesOfEveryRankRoundTrip() throws {
        let cases: [NPYArray] = [
            NPYArray(shape: [], values: [3.5]),
            NPYArray(shape: [5], values: [1, -1, 0, .greatestFiniteMagnitude, -0.0]),
            NPYArray(shape: [0], values: []),
            NPYArray(shape: [2, 1, 3, 1], values: [1, 2, 3, 4, 5, 6]),
        ]
        for array in cases {
            let bytes = try NPY.encode(array)
            #expect(bytes.count % 64 == array.values.count * 4 % 64, "data starts at a multiple of 64")
            #expect(try NPY.decode(bytes) == array)
        }
        let directory = TemporaryDirectory()
        try NPY.write(cases[3], to: directory.file("a.npy"))
        #expect(try NPY.read(directory.file("a.npy")) == cases[3])
    }

    @Test func readsVersionTwoAndForeignSpacing() throws {
        let bytes = handBuiltNPY(major: 2, header: "{\"shape\": (2,),\"fortran_order\":False, 'descr':'<f4'}\n", data: floatBytes([7, 8]))
        #expect(try NPY.decode(bytes) == NPYArray(shape: [2], values: [7, 8]))
        let longs = handBuiltNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }\n", data: floatBytes([1, 2]))
        #expect(try NPY.decode(longs) == NPYArray(shape: [1, 2], values: [1, 2]))
    }

    @Test func malformedFilesAreNamedTypedErrors() throws {
        let good = try NPY.encode(NPYArray(shape: [2], values: [1, 2]))
        for length in 0..<good.count {
            #expect(npyError(Array(good[0..<length])) != nil, "prefix of \(length) bytes")
        }
        #expect(npyError(Array("hello world".utf8)) == .notNPY(file: "x.npy"))
        #expect(npyError([0x93] + Array("NUMPY".utf8) + [4, 0, 0, 0]) == .unsupportedVersion(file: "x.npy", major: 4, minor: 0))
        #expect(npyError(handBuiltNPY(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", data: [UInt8](repeating: 0, count: 8)))
                == .unsupportedDType(file: "x.npy", descr: "<f8"))
        #expect(npyError(handBuiltNPY(header: "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", data: [0, 0, 0, 0]))
                == .unsupportedDType(file: "x.npy", descr: ">f4"))
        #expect(npyError(handBuiltNPY(header: "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", data: [0, 0, 0, 0]))
                == .fortranOrder(file: "x.npy"))
        #expect(npyError(handBuiltNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", data: [0, 0, 0, 0]))
                == .sizeMismatch(file: "x.npy", expectedBytes: 12, actualBytes: 4))
        for header in ["{'descr': '<f4', 'shape': (1,)}", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
                       "not a dict", "{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}",
                       "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}"] {
            if case .malformedHeader(let file, _)? = npyError(handBuiltNPY(header: header, data: [0, 0, 0, 0])) {
                #expect(file == "x.npy")
            } else {
                Issue.record("header \(header) must be malformedHeader")
            }
        }
        #expect(throws: NPYError.shapeMismatch(shape: [3], valueCount: 2)) { try NPY.encode(NPYArray(shape: [3], values: [1, 2])) }
        #expect(throws: NPYError.self) { try NPY.read("/nonexistent/a.npy") }
    }
}
