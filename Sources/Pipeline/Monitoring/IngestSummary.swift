/// What one run did.
package struct IngestSummary: Sendable {
    package var source: String
    /// Messages in the input (lines of a file, Kafka messages consumed).
    package var messages: Int64
    /// Records beyond the first of messages that held several (a CloudTrail delivery file is one
    /// line of many events): each is accounted as an event of its own.
    package var extraRecords: Int = 0
    /// Messages an earlier run had already committed (skipped now).
    package var alreadyCommitted: Int64
    package var stored: Int
    package var deadLettered: [String: Int]
    package var partitionsCreated: Int
    package var seconds: Double
    package var bytesRead: Int
    /// The run was asked to stop (and committed what it had read).
    package var stopped: Bool
    /// Bytes of a file's last line left for a later run: no newline yet, and not whole JSON (its
    /// writer may be writing it). Not counted in `messages`.
    package var heldBackBytes: Int = 0

    package var deadLetteredTotal: Int { deadLettered.values.reduce(0, +) }
    /// Messages handled by this run per second.
    package var eventsPerSecond: Double { seconds > 0 ? Double(stored + deadLetteredTotal) / seconds : 0 }
    /// True when every message is in audit_log or audit_dead_letter (now or from an earlier run).
    package var isComplete: Bool { alreadyCommitted + Int64(stored + deadLetteredTotal) == messages + Int64(extraRecords) }
}
