import Foundation
import LogOutput
import Logging
import Testing

@Suite struct JSONLogLineTests {
    static func decode(_ line: String) throws -> JSONLogLine {
        try JSONDecoder().decode(JSONLogLine.self, from: Data(line.utf8))
    }

    @Test func aLineHoldsEveryFieldAndReadsBack() throws {
        let line = JSONLogLine(date: Date(timeIntervalSince1970: 1.5), level: .warning, label: "scvae.worker",
                               message: "rank 1 is late", metadata: ["role": "worker", "rank": "1"], source: "Worker")
        let decoded = try Self.decode(line.encoded())
        #expect(decoded == line)
        #expect(decoded.time == "1970-01-01T00:00:01.500Z")
        #expect(decoded.level == "warning" && decoded.label == "scvae.worker" && decoded.source == "Worker")
        #expect(decoded.metadata == ["role": "worker", "rank": "1"])
    }

    @Test(arguments: [
        "say \"hello\"",
        "two\nlines\r\nand a tab\t",
        "back\\slash and a / slash",
        "non-ASCII: ü, 日本語, 🚀",
        "control \u{0} \u{1b}[31m red",
        "{\"looks\": \"like JSON\"}",
    ])
    func anyMessageStaysOnOneLineAndReadsBackUnchanged(message: String) throws {
        let line = JSONLogLine(date: Date(), level: .info, label: "x", message: message,
                               metadata: ["key \"quoted\"": .string(message)], source: "Tests")
        let text = line.encoded()
        #expect(!text.contains("\n") && !text.contains("\r"), "\(text)")
        #expect(text.hasPrefix("{") && text.hasSuffix("}"))
        let decoded = try Self.decode(text)
        #expect(decoded.message == message)
        #expect(decoded.metadata["key \"quoted\""] == message)
    }

    @Test func metadataValuesBecomeStrings() throws {
        let metadata: Logger.Metadata = [
            "text": "plain",
            "number": .stringConvertible(42),
            "list": ["a", "b"],
            "nested": ["k": "v"],
        ]
        let line = JSONLogLine(date: Date(), level: .debug, label: "x", message: "m", metadata: metadata, source: "S")
        let object = try #require(JSONSerialization.jsonObject(with: Data(line.encoded().utf8)) as? [String: Any])
        let written = try #require(object["metadata"] as? [String: String], "every metadata value is a string: \(object)")
        #expect(written["text"] == "plain" && written["number"] == "42")
        #expect(written["list"] == Logger.MetadataValue.array(["a", "b"]).description)
        #expect(written["nested"] == Logger.MetadataValue.dictionary(["k": "v"]).description)
        #expect(Set(object.keys) == ["time", "level", "label", "message", "metadata", "source"])
    }

    @Test func timesAreUTCWithMilliseconds() {
        // .125 is exact in binary, so the milliseconds cannot round either way.
        let line = JSONLogLine(date: Date(timeIntervalSince1970: 1_700_000_000.125), level: .info, label: "x", message: "m",
                               metadata: [:], source: "S")
        #expect(line.time == "2023-11-14T22:13:20.125Z")
    }
}
