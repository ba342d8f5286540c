import Foundation
import Logging

/// One log record as one line of JSON: `{"label":…,"level":…,"message":…,"metadata":{…},"source":…,"time":…}`.
/// A pure value: `JSONLogHandler` is the shell that stamps the time and writes the line.
public struct JSONLogLine: Codable, Equatable, Sendable {
    /// ISO 8601 in UTC with milliseconds, e.g. `2025-03-01T12:34:56.789Z`.
    public var time: String
    /// swift-log's level name: trace, debug, info, notice, warning, error or critical.
    public var level: String
    /// The logger's label, e.g. `scvae.worker`.
    public var label: String
    public var message: String
    /// Every metadata value as a string (lists and dictionaries as swift-log prints them).
    public var metadata: [String: String]
    /// The module that logged.
    public var source: String

    public init(date: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata,
                source: String) {
        time = date.formatted(Self.timeFormat)
        self.level = level.rawValue
        self.label = label
        self.message = message
        self.metadata = metadata.mapValues(Self.flatten)
        self.source = source
    }

    /// The line without its newline. JSONEncoder escapes quotes, backslashes and control
    /// characters (a newline becomes `\n`), so no message can end the line or the object early.
    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and a dictionary of strings cannot fail.
        let data = (try? encoder.encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func flatten(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: value.description
        }
    }
}
