/// How log lines are written (`--log-format`, `SCVAE_LOG_FORMAT`).
public enum LogFormat: String, CaseIterable, Sendable {
    /// swift-log's `StreamLogHandler` line: `TIME LEVEL LABEL: key=value ... [SOURCE] MESSAGE`.
    case text
    /// One JSON object per line (`JSONLogLine`), for log collectors.
    case json
}
