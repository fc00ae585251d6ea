import Kafka
import Logging

/// What a running consumer tells operators: the status the admin server exports (about once a
/// second), alerts, a progress line and positions committed to Kafka for lag tools (every
/// `reportEvery`). Used on the polling thread only.
final class KafkaMonitor {
    private let source: String
    private let consumer: KafkaConsumer
    private let feed: IngestFeed
    private let status: PipelineStatusBox
    private let options: KafkaSource.Options
    private let logger: Logger
    private var lastPublish = ContinuousClock.now
    private var lastReport = ContinuousClock.now
    private var lastReportCount: Int64 = 0
    private var lastAlertSnapshot: IngestStatistics.Snapshot?

    init(consumer: KafkaConsumer, feed: IngestFeed, status: PipelineStatusBox, options: KafkaSource.Options, logger: Logger) {
        self.source = feed.source
        self.consumer = consumer
        self.feed = feed
        self.status = status
        self.options = options
        self.logger = logger
    }

    /// Publishes and reports when it is time.
    func tick(consumed: Int64) {
        let now = ContinuousClock.now
        if lastPublish.duration(to: now) >= .seconds(1) {
            publishStatus()
            lastPublish = now
        }
        if lastReport.duration(to: now) >= options.reportEvery {
            let seconds = lastReport.duration(to: now).secondsDouble
            report(rate: Double(consumed - lastReportCount) / seconds)
            commitStoredPositions()
            lastReport = now
            lastReportCount = consumed
        }
    }

    /// True when partitions are assigned and the lag of every one is known and zero.
    var isCaughtUp: Bool {
        let assignment = consumer.assignment
        let lag = consumer.lag()
        return !assignment.isEmpty && assignment.allSatisfy { lag[$0] == 0 }
    }

    /// Commits to Kafka what PostgreSQL holds (the lowest position over shards), for lag
    /// monitoring only: the truth is in PostgreSQL.
    func commitStoredPositions() {
        if let positions = feed.lowestStoredPositions(consumer.assignment) { consumer.commit(positions) }
    }

    private func publishStatus() {
        let statistics = feed.statistics
        let snapshot = statistics.snapshot
        let lag = consumer.lag()
        let previous = status.currentStatus()?.alerts ?? [:]
        var alerts = previous
        alerts["consumer_lag"] = lag.values.reduce(0, +) > options.alertThresholds.consumerLag
        if let last = lastAlertSnapshot {
            let handled = (snapshot.stored + snapshot.deadLetteredTotal) - (last.stored + last.deadLetteredTotal)
            let dead = snapshot.deadLetteredTotal - last.deadLetteredTotal
            if handled >= 100 { alerts["dead_letter_rate"] = Double(dead) / Double(handled) > options.alertThresholds.deadLetterRate }
        }
        lastAlertSnapshot = snapshot
        for (name, firing) in alerts where firing && previous[name] != true {
            logger.warning("alert firing", metadata: ["alert": "\(name)", "lag": "\(lag.values.reduce(0, +))"])
        }
        let occupancy = feed.ringOccupancy
        statistics.metrics?.recordLag(lag)
        statistics.metrics?.recordRingOccupancy(occupancy)
        status.publish(PipelineStatus(source: source, statistics: snapshot, lag: lag, ringOccupancy: occupancy,
                                      ringCapacity: feed.configuration.ringCapacity, alerts: alerts))
    }

    private func report(rate: Double) {
        let snapshot = feed.statistics.snapshot
        let lag = consumer.lag().sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
        let flushLatency = snapshot.flushes > 0 ? snapshot.flushSeconds / Double(snapshot.flushes) * 1000 : 0
        logger.info("progress", metadata: [
            "events_per_second": "\(Int(rate))", "stored": "\(snapshot.stored)",
            "dead_lettered": "\(snapshot.deadLetteredTotal)", "lag": "\(lag)",
            "flush_ms_avg": "\(Int(flushLatency))", "ring_occupancy": "\(feed.ringOccupancy)",
        ])
    }
}
