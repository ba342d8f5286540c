#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import Dataset

/// Folders that cannot be indexed say which path and what to do; names that are not UTF-8 are
/// left out, listed, and do not change the index.
@Suite struct DatasetIndexProblemTests {
    /// Creates the file or folder at `path`, given as bytes (a name need not be UTF-8).
    func create(_ path: [UInt8], folder: Bool = false) {
        let made = (path + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { name -> Bool in
                if folder { return mkdir(name.baseAddress!, 0o755) == 0 }
                let descriptor = open(name.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                guard descriptor >= 0 else { return false }
                _ = write(descriptor, [UInt8(1), 2, 3], 3)
                return close(descriptor) == 0
            }
        }
        precondition(made, "cannot create \(String(decoding: path, as: UTF8.self))")
    }

    @Test func namesThatAreNotUTF8AreLeftOutAndListedWithoutChangingTheIndex() throws {
        let plain = TemporaryDirectory()
        plain.write([1, 2, 3, 4], to: "n01/a.jpg")
        plain.write([5, 6], to: "b.png")
        let before = try DatasetIndex.scan(root: plain.path)
        #expect(before.nonUTF8Names.isEmpty)

        let root = Array(plain.path.utf8)
        create(root + Array("/n01/caf".utf8) + [0xE9] + Array(".jpg".utf8))  // Latin-1 "café.jpg"
        create(root + Array("/".utf8) + [0xFF] + Array("notes.txt".utf8))  // not an image: not listed
        let folder = root + Array("/n0".utf8) + [0xC3]  // a two-byte sequence cut short
        create(folder, folder: true)
        create(folder + Array("/inside.png".utf8))
        let after = try DatasetIndex.scan(root: plain.path)
        #expect(after.samples == before.samples)
        #expect(after.fingerprint == before.fingerprint)
        #expect(after == before, "the names left out are not part of the index's identity")
        #expect(after.nonUTF8Names == ["n01/caf\\xE9.jpg", "n0\\xC3"])

        // The index cache hands them on when it reuses its file.
        let cache = TemporaryDirectory()
        _ = try DatasetIndexCache.load(root: plain.path, cacheDirectory: cache.path)
        let reused = try DatasetIndexCache.load(root: plain.path, cacheDirectory: cache.path)
        guard case .reused = reused.cache else { Issue.record("expected the cache to be reused: \(reused.cache)"); return }
        #expect(reused.index.nonUTF8Names == after.nonUTF8Names)
    }

    @Test func escapedNamesShowEachInvalidByte() {
        #expect(DatasetIndex.escapedName(Array("plain é.jpg".utf8)) == "plain é.jpg")
        #expect(DatasetIndex.escapedName([0x61, 0xE9, 0x62]) == "a\\xE9b")
        #expect(DatasetIndex.escapedName([0xF0, 0x9F, 0x98]) == "\\xF0\\x9F\\x98")  // a four-byte sequence cut short
        #expect(DatasetIndex.escapedName([0x0A, 0xFF]) == "\n\\xFF")
    }

    @Test func eachProblemNamesItsPathAndWhatToDo() throws {
        let directory = TemporaryDirectory()
        let file = directory.write([1], to: "a-file.jpg")
        #expect(throws: DatasetError.notADirectory(path: file)) { try DatasetIndex.scan(root: file) }
        #expect(throws: DatasetError.notFound(path: file + "/below")) { try DatasetIndex.scan(root: file + "/below") }
        let missing = DatasetError.notFound(path: "/no/such/folder").description
        #expect(missing.contains("/no/such/folder does not exist") && missing.contains("give the folder that holds the images"))
        #expect(DatasetError.notADirectory(path: file).description.contains("\(file) is a file, not a folder"))
        #expect(DatasetError.noImages(root: "/data").description.contains("/data holds no .jpg, .jpeg or .png files"))
        let unreadable = DatasetError.unreadableDirectory(path: "/data/n01", reason: "Permission denied").description
        #expect(unreadable.contains("/data/n01") && unreadable.contains("Permission denied") && unreadable.contains("chmod"))

        let location = DatasetLocation.Failure.index(root: file, .notADirectory(path: file)).description
        #expect(location == "cannot index the dataset: \(file) is a file, not a folder: give the folder that holds the images (ROOT/<class>/<file>, or any folder of images)")
    }

    /// Root reads any folder; the process tests run the coordinator as another user for this case.
    @Test(.enabled(if: getuid() != 0, "root can list a folder of mode 000"))
    func aFolderThatCannotBeListedIsAnErrorNotASilentGap() throws {
        let directory = TemporaryDirectory()
        directory.write([1], to: "n01/a.jpg")
        directory.write([2], to: "n02/b.jpg")
        let locked = directory.file("n02")
        chmod(locked, 0)
        defer { chmod(locked, 0o755) }
        let error = try #require(throws: DatasetError.self) { try DatasetIndex.scan(root: directory.path) }
        guard case let .unreadableDirectory(path, reason) = error else { Issue.record("\(error)"); return }
        #expect(path.hasSuffix("/n02"))
        #expect(reason == String(cString: strerror(EACCES)))
    }
}
