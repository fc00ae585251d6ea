import Foundation
import Kafka
import Logging
import Postgres

/// What a running consumer tells operators: the status the admin server exports (about once a
/// second), alerts, and a progress line (every `reportEvery`). Reads the consumer and the run's
/// counters; changes nothing. Used on the engine's thread only.
final class KafkaMonitor {
    private let source: String
    private let consumer: KafkaConsumer
    private let run: SourceRun
    private let status: PipelineStatusBox
    private let options: KafkaSource.Options
    private let logger: Logger
    private let clock: ThreadClock
    private let started: ContinuousClock.Instant
    private var lastPublish: ContinuousClock.Instant
    private var lastReport: ContinuousClock.Instant
    private var lastReportCount: Int64 = 0
    private var lastAlertSnapshot: IngestStatistics.Snapshot?
    /// Since when fetching is paused (the source's backpressure sets it); nil while it fetches.
    var pausedSince: ContinuousClock.Instant?
    private var lagTimes = PartitionLagTimes()

    init(consumer: KafkaConsumer, run: SourceRun, status: PipelineStatusBox, options: KafkaSource.Options, logger: Logger) {
        self.source = run.source
        self.consumer = consumer
        self.run = run
        self.status = status
        self.options = options
        self.logger = logger
        clock = run.configuration.clock
        (started, lastPublish, lastReport) = (clock.now(), clock.now(), clock.now())
    }

    /// Publishes and reports when it is time. `firstAssignment`: the rate since then leaves the
    /// group join out.
    func tick(consumed: Int64, firstAssignment: ContinuousClock.Instant?) {
        let now = clock.now()
        if lastPublish.duration(to: now) >= .seconds(1) {
            consumer.checkBrokersIfDown()
            publishStatus()
            lastPublish = now
        }
        if lastReport.duration(to: now) >= options.reportEvery {
            let seconds = lastReport.duration(to: now).secondsDouble
            report(rate: Double(consumed - lastReportCount) / seconds, consumed: consumed, firstAssignment: firstAssignment, now: now)
            lastReport = now
            lastReportCount = consumed
        }
    }

    /// Partitions were revoked: their lag in seconds is another consumer's now.
    func revoked(_ partitions: [Int32]) {
        lagTimes.forget(partitions)
    }

    /// The Kafka timestamp (ms since the epoch) of the last message read from `partition`.
    func read(partition: Int32, timestamp: Int64) {
        lagTimes.read(partition: partition, timestamp: timestamp)
    }

    /// True when partitions are assigned and the lag of every one is known and zero.
    /// The fetched watermarks answer first (no round trip); when they say caught up, the broker
    /// is asked, since a partition whose first fetch has not answered reads 0 there.
    var isCaughtUp: Bool {
        let assignment = consumer.assignment
        guard !assignment.isEmpty else { return false }
        let fetched = consumer.lag()
        guard assignment.allSatisfy({ fetched[$0] == 0 }) else { return false }
        let asked = consumer.queryLag()
        return assignment.allSatisfy { asked[$0] == 0 }
    }

    private func publishStatus() {
        let statistics = run.statistics
        let snapshot = statistics.snapshot
        let lag = consumer.lag()
        let lagSeconds = lagTimes.seconds(lag: lag, now: Int64(Date().timeIntervalSince1970 * 1000))
        let alerts = updatedAlerts(snapshot: snapshot, lag: lag)
        let occupancy = run.ringOccupancy
        statistics.metrics?.recordLag(lag, seconds: lagSeconds, streams: run.streams)
        statistics.metrics?.recordRingOccupancy(occupancy)
        let state = ConsumerState(assignedPartitions: consumer.assignment.count, brokersDown: consumer.brokersDown,
                                  pausedSince: pausedSince)
        status.publish(PipelineStatus(source: source, statistics: snapshot, lag: lag, ringOccupancy: occupancy,
                                      ringCapacity: run.configuration.eventsInFlight, alerts: alerts,
                                      lagSeconds: lagSeconds, consumer: state))
    }

    private func updatedAlerts(snapshot: IngestStatistics.Snapshot, lag: [Int32: Int64]) -> [String: Bool] {
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
            logger.warning("alert firing", metadata: [LogKey.alert: "\(name)", LogKey.lag: "\(lag.values.reduce(0, +))"])
        }
        return alerts
    }

    /// A partition as operators name it: its number with one topic, else `topic/partition`.
    private func label(_ key: Int32) -> String {
        consumer.topics.names.count > 1 ? "\(consumer.topics.topic(of: key))/\(KafkaTopics.partition(of: key))" : "\(key)"
    }

    /// The progress line: rates (last interval, whole run, since the first assignment), counts,
    /// lag, flush latency, rings, and whether the brokers answer and fetching is paused.
    private func report(rate: Double, consumed: Int64, firstAssignment: ContinuousClock.Instant?, now: ContinuousClock.Instant) {
        let snapshot = run.statistics.snapshot
        let lag = consumer.lag().sorted { $0.key < $1.key }.map { "\(label($0.key)):\($0.value)" }.joined(separator: " ")
        let flushLatency = snapshot.flushes > 0 ? snapshot.flushSeconds / Double(snapshot.flushes) * 1000 : 0
        func perSecond(since start: ContinuousClock.Instant) -> String {
            let seconds = start.duration(to: now).secondsDouble
            return seconds > 0 ? "\(Int(Double(consumed) / seconds))" : "0"
        }
        var metadata: Logger.Metadata = [
            LogKey.eventsPerSecond: "\(Int(rate))", LogKey.eventsPerSecondOverall: "\(perSecond(since: started))",
            LogKey.stored: "\(snapshot.stored)", LogKey.deadLettered: "\(snapshot.deadLetteredTotal)", LogKey.lag: "\(lag)",
            LogKey.flushMsAvg: "\(Int(flushLatency))", LogKey.ringOccupancy: "\(run.ringOccupancy)",
            LogKey.partitions: "\(consumer.assignment.count)", LogKey.brokers: "\(consumer.brokersDown ? "down" : "up")",
        ]
        if let firstAssignment { metadata[LogKey.eventsPerSecondSinceAssignment] = "\(perSecond(since: firstAssignment))" }
        if let pausedSince { metadata[LogKey.fetchPausedSeconds] = "\(Int(pausedSince.duration(to: now).secondsDouble))" }
        logger.info("progress", metadata: metadata)
    }
}
