import Synchronization

/// What a running pipeline reports to the admin server: counters, lag, rings and alerts.
package struct PipelineStatus: Sendable {
    package var source: String
    package var statistics: IngestStatistics.Snapshot
    /// Per partition: high watermark minus the next offset to read.
    package var lag: [Int32: Int64]
    package var ringOccupancy: [Int]
    package var ringCapacity: Int
    /// Alert name -> firing (see `AlertThresholds`).
    package var alerts: [String: Bool]
    /// Per partition: seconds since the Kafka timestamp of the last message read, 0 when caught
    /// up; partitions with a lag but no message read yet are left out.
    package var lagSeconds: [Int32: Double]
    /// The Kafka consumer's state; nil for other sources.
    package var consumer: ConsumerState?
    /// When this status was taken: a status that stops being renewed means a stuck loop.
    package var taken: ContinuousClock.Instant

    package init(source: String, statistics: IngestStatistics.Snapshot, lag: [Int32: Int64], ringOccupancy: [Int],
                ringCapacity: Int, alerts: [String: Bool], lagSeconds: [Int32: Double] = [:],
                consumer: ConsumerState? = nil, taken: ContinuousClock.Instant = .now) {
        self.source = source
        self.statistics = statistics
        self.lag = lag
        self.ringOccupancy = ringOccupancy
        self.ringCapacity = ringCapacity
        self.alerts = alerts
        self.lagSeconds = lagSeconds
        self.consumer = consumer
        self.taken = taken
    }
}

/// What readiness (`/readyz`) and the exported gauges need to know about a Kafka consumer.
package struct ConsumerState: Sendable, Equatable {
    /// Partitions this process reads now (0 before the group's first assignment, or when the
    /// group has more members than the topic has partitions).
    package var assignedPartitions: Int
    /// librdkafka reported every broker connection down, and no broker has answered since.
    package var brokersDown: Bool
    /// Since when fetching is paused because the flushers are behind; nil while it fetches.
    package var pausedSince: ContinuousClock.Instant?

    package init(assignedPartitions: Int, brokersDown: Bool, pausedSince: ContinuousClock.Instant?) {
        self.assignedPartitions = assignedPartitions
        self.brokersDown = brokersDown
        self.pausedSince = pausedSince
    }
}

/// Anything whose status the admin server can export.
package protocol PipelineStatusProvider: Sendable {
    func currentStatus() -> PipelineStatus?
}

/// When the pipeline warns (log line and `audit_ingest_alert{alert="..."} 1`).
package struct AlertThresholds: Sendable {
    /// Total consumer lag across partitions. Default: 100,000 messages.
    package var consumerLag: Int64
    /// Dead letters as a share of handled events over the last report interval. Default: 5%.
    package var deadLetterRate: Double

    package init(consumerLag: Int64 = 100_000, deadLetterRate: Double = 0.05) {
        self.consumerLag = consumerLag
        self.deadLetterRate = deadLetterRate
    }
}

/// The latest status, written by the pipeline thread and read by HTTP handlers. Other parts
/// (the rollup service) raise their own alerts here too.
package final class PipelineStatusBox: PipelineStatusProvider {
    private let value = Mutex<PipelineStatus?>(nil)
    private let otherAlerts = Mutex<[String: Bool]>([:])
    package init() {}
    package func publish(_ status: PipelineStatus) { value.withLock { $0 = status } }

    package func setAlert(_ name: String, firing: Bool) { otherAlerts.withLock { $0[name] = firing } }

    package func currentStatus() -> PipelineStatus? {
        guard var status = value.withLock({ $0 }) else { return nil }
        status.alerts.merge(otherAlerts.withLock { $0 }) { $1 }
        return status
    }

    /// Alerts raised through `setAlert`.
    package var alerts: [String: Bool] { otherAlerts.withLock { $0 } }
}
