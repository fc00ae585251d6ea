import Synchronization

/// Counters the flushers and the source share; read for progress lines, summaries and metrics.
public final class IngestStatistics: Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// Messages the source handed to the pipeline this run (after resume skipping).
        public var received = 0
        /// Messages skipped because an earlier run had already committed them.
        public var alreadyCommitted = 0
        /// Rows committed to audit_log.
        public var stored = 0
        /// Rows committed to audit_dead_letter, by reason.
        public var deadLettered: [String: Int] = [:]
        public var flushes = 0
        /// Sum of flush durations, seconds.
        public var flushSeconds = 0.0
        /// Flush transactions retried after a transient error.
        public var retries = 0
        public var bytesRead = 0
        /// Kafka messages deleted by the broker (retention) after the stored position and before
        /// they could be read: the gap between where a partition was resumed and its first message.
        public var unavailable = 0
        /// Times the Kafka consumer paused fetching because the flushers were behind.
        public var pauses = 0
        /// Flushes by duration: `flushLatencyCounts[i]` counts flushes that took at most
        /// `IngestStatistics.flushLatencyBounds[i]` seconds and more than the bound before it; the
        /// last entry counts the slower ones.
        public var flushLatencyCounts = [Int](repeating: 0, count: IngestStatistics.flushLatencyBounds.count + 1)

        public var deadLetteredTotal: Int { deadLettered.values.reduce(0, +) }

        mutating func recordFlush(seconds: Double) {
            flushes += 1
            flushSeconds += seconds
            let bucket = IngestStatistics.flushLatencyBounds.firstIndex { seconds <= $0 } ?? IngestStatistics.flushLatencyBounds.count
            flushLatencyCounts[bucket] += 1
        }
    }

    /// Upper bounds (seconds) of the flush latency histogram buckets.
    public static let flushLatencyBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private let counters = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { counters.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) {
        counters.withLock { body(&$0) }
    }
}
