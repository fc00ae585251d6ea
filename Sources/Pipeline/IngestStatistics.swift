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

        public var deadLetteredTotal: Int { deadLettered.values.reduce(0, +) }
    }

    private let counters = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { counters.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) {
        counters.withLock { body(&$0) }
    }
}
