import CoreMetrics
import Synchronization

/// Counters the flushers and the source share; read for progress lines, summaries and metrics.
package final class IngestStatistics: Sendable {
    package struct Snapshot: Sendable, Equatable {
        /// Messages the source handed to the pipeline this run (after resume skipping).
        package var received = 0
        /// Messages skipped because an earlier run had already committed them.
        package var alreadyCommitted = 0
        /// Records beyond the first of messages that held several (see `--format cloudtrail`).
        package var extraRecords = 0
        /// Rows committed to audit_log.
        package var stored = 0
        /// Rows committed to audit_dead_letter, by reason.
        package var deadLettered: [String: Int] = [:]
        package var flushes = 0
        /// Sum of flush durations, seconds.
        package var flushSeconds = 0.0
        /// Flush transactions retried after a transient error.
        package var retries = 0
        package var bytesRead = 0
        /// Kafka messages deleted by the broker (retention) after the stored position and before
        /// they could be read: the gap between where a partition was resumed and its first message.
        package var unavailable = 0
        /// Times the Kafka consumer paused fetching because the flushers were behind.
        package var pauses = 0

        package var deadLetteredTotal: Int { deadLettered.values.reduce(0, +) }

        mutating func recordFlush(seconds: Double) {
            flushes += 1
            flushSeconds += seconds
        }
    }

    private let counters = Mutex(Snapshot())
    /// The same figures as swift-metrics values (nil: not exported).
    let metrics: IngestMetrics?

    /// - Parameters:
    ///   - source: the `source` dimension of the exported metrics; nil exports none.
    ///   - factory: where metrics go. Default: the process's bootstrapped backend.
    package init(source: String? = nil, factory: MetricsFactory = MetricsSystem.factory) {
        metrics = source.map { IngestMetrics(source: $0, factory: factory) }
    }

    package var snapshot: Snapshot { counters.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) {
        guard let metrics else { return counters.withLock { body(&$0) } }
        let (before, after) = counters.withLock { counters in
            let before = counters
            body(&counters)
            return (before, counters)
        }
        metrics.record(from: before, to: after)
    }
}
