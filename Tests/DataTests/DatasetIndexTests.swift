import Foundation
import Testing
@testable import Dataset

@Suite struct SHA256Tests {
    @Test func publishedVectors() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Padding boundaries, checked against Python's hashlib.
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 55)) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 56)) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 64)) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
    }
}

@Suite struct DatasetIndexTests {
    /// An ImageNet-like tree with distractors.
    func makeTree() -> TemporaryDirectory {
        let directory = TemporaryDirectory()
        directory.write([UInt8](repeating: 1, count: 10), to: "n02/b.JPEG")
        directory.write([UInt8](repeating: 2, count: 20), to: "n01/a.JPEG")
        directory.write([UInt8](repeating: 3, count: 30), to: "n01/c.png")
        directory.write([UInt8](repeating: 4, count: 40), to: "n01/notes.txt")
        directory.write([UInt8](repeating: 5, count: 50), to: ".hidden/x.jpg")
        directory.write([UInt8](repeating: 6, count: 60), to: "n01/.partial.jpg")
        directory.write([UInt8](repeating: 7, count: 70), to: "z.jpg")
        directory.write([UInt8](repeating: 8, count: 80), to: "n02/deeper/d.Jpg")
        return directory
    }

    @Test func scanListsImagesInByteOrderWithClasses() throws {
        let tree = makeTree()
        let index = try DatasetIndex.scan(root: tree.path)
        #expect(index.samples.map(\.path) == ["n01/a.JPEG", "n01/c.png", "n02/b.JPEG", "n02/deeper/d.Jpg", "z.jpg"])
        #expect(index.samples.map(\.size) == [20, 30, 10, 80, 70])
        #expect(index.classNames == ["n01", "n02"])
        #expect(index.samples[4].className == nil)
        #expect(FileManager.default.fileExists(atPath: index.path(of: 0)))
        #expect(try DatasetIndex.scan(root: tree.path + "/") == index, "stable across scans and spellings of the root")
    }

    @Test func fingerprintIsTheDocumentedHash() throws {
        let tree = makeTree()
        let index = try DatasetIndex.scan(root: tree.path)
        let text = "n01/a.JPEG\t20\nn01/c.png\t30\nn02/b.JPEG\t10\nn02/deeper/d.Jpg\t80\nz.jpg\t70\n"
        #expect(index.fingerprint == SHA256.hex(text.utf8))

        // The shell recipe in DatasetIndex's documentation gives the same digest.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.currentDirectoryURL = URL(fileURLWithPath: tree.path)
        process.arguments = ["-c", #"find -L . -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) -not -path '*/.*' -printf '%P\t%s\n' | LC_ALL=C sort | sha256sum"#]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.hasPrefix(index.fingerprint))
    }

    @Test func cacheIsWrittenReusedAndInvalidated() throws {
        let tree = makeTree()
        let cache = TemporaryDirectory()
        let first = try DatasetIndexCache.load(root: tree.path, cacheDirectory: cache.path + "/nested")
        guard case .written(let file) = first.cache else {
            Issue.record("first load writes the cache, got \(first.cache)")
            return
        }
        #expect(file.hasPrefix(cache.path + "/nested/index-"))
        let second = try DatasetIndexCache.load(root: tree.path, cacheDirectory: cache.path + "/nested")
        #expect(second.cache == .reused(file: file))
        #expect(second.index == first.index)

        // A file that changes size changes the fingerprint and rewrites the cache.
        tree.write([UInt8](repeating: 2, count: 21), to: "n01/a.JPEG")
        let third = try DatasetIndexCache.load(root: tree.path, cacheDirectory: cache.path + "/nested")
        #expect(third.cache == .written(file: file))
        #expect(third.index.fingerprint != first.index.fingerprint)
        #expect(try DatasetIndexCache.read(file) == third.index)

        // A damaged cache is rebuilt, not trusted.
        try "scvae-dataset-index 1\nroot x\nfingerprint 00\ncount 0\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try DatasetIndexCache.load(root: tree.path, cacheDirectory: cache.path + "/nested").cache == .written(file: file))
    }

    @Test func cacheFormatEscapesAwkwardNames() throws {
        let tree = TemporaryDirectory()
        tree.write([1, 2, 3], to: "we\\ird\tname.jpg")
        let cache = TemporaryDirectory()
        let loaded = try DatasetIndexCache.load(root: tree.path, cacheDirectory: cache.path)
        guard case .written(let file) = loaded.cache else { Issue.record("expected a written cache"); return }
        let reread = try DatasetIndexCache.read(file)
        #expect(reread.samples.map(\.path) == ["we\\ird\tname.jpg"])
        #expect(reread == loaded.index)
    }

    @Test func defaultCacheDirectoryFollowsXDG() {
        #expect(DatasetIndexCache.defaultDirectory(xdgCacheHome: "/somewhere/cache", home: "/home/u") == "/somewhere/cache/scvae")
        #expect(DatasetIndexCache.defaultDirectory(xdgCacheHome: "", home: "/home/u") == "/home/u/.cache/scvae")
        #expect(DatasetIndexCache.defaultDirectory(xdgCacheHome: nil, home: "/home/u") == "/home/u/.cache/scvae")
    }

    @Test func missingAndEmptyFoldersAreTypedErrors() {
        #expect(throws: DatasetError.notFound(path: "/nonexistent/data")) { try DatasetIndex.scan(root: "/nonexistent/data") }
        let empty = TemporaryDirectory()
        empty.write([1], to: "readme.txt")
        #expect(throws: DatasetError.noImages(root: empty.path)) { try DatasetIndex.scan(root: empty.path) }
    }
}
