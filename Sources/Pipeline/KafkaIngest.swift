import AuditCore
import Foundation
import Kafka
import Logging
import Postgres

/// What a `consume` run did.
public struct ConsumeSummary: Sendable {
    public var source: String
    public var consumed: Int
    public var stored: Int
    public var deadLettered: [String: Int]
    public var alreadyCommitted: Int
    public var partitionsCreated: Int
    public var seconds: Double

    public var deadLetteredTotal: Int { deadLettered.values.reduce(0, +) }
    public var eventsPerSecond: Double { seconds > 0 ? Double(stored + deadLetteredTotal) / seconds : 0 }
}

/// Kafka as a source of the engine: a group consumer whose positions live in PostgreSQL
/// (`kafka:<group>:<topic>` in ingest_offsets), feeding the same rings and flushers as a file.
///
/// Exactly once across crashes and rebalances: on assignment each partition resumes at the
/// minimum over shards of what they stored, and each shard skips what it already has; on
/// revocation everything in flight is flushed before the partitions are released.
///
/// Runs on the calling thread (`run`), which is also where librdkafka calls back.
public final class KafkaIngest: KafkaRebalanceHandler {
    public let topic: String
    public let group: String
    public let source: String
    private let kafka: KafkaConfiguration
    private let engine: IngestEngine
    private let logger: Logger
    private let store: OffsetStore
    private var control: PostgresConnection?
    private var shards: ShardGroup?
    private var fatal: Error?
    private let stop: StopSignal
    /// When partitions were last assigned (idleness counts from there).
    private var lastAssignment: ContinuousClock.Instant?
    /// Per newly assigned partition with a stored position: that position, until its first
    /// message shows whether the broker still had it.
    private var resumedAt: [Int32: Int64] = [:]
    private var statistics: IngestStatistics?
    /// Where the admin server reads the live status (updated about once a second).
    public let status = PipelineStatusBox()
    public var alertThresholds = AlertThresholds()
    /// How long the rings may stay (nearly) full before fetching pauses; well under
    /// max.poll.interval.ms (300 s by default).
    public var pauseAfter: Duration = .seconds(2)
    /// How long a stop (SIGTERM) may wait for in-flight batches to commit. Default: 10 s.
    public var stopTimeout: Duration = .seconds(10)
    /// Also gets every committed dead letter (e.g. `KafkaDeadLetterTopic`).
    public var deadLetterSink: (any DeadLetterSink)?
    /// Group membership (the default) or a static set of partitions.
    public var assignment: KafkaConsumer.Assignment = .group
    private var lastAlertSnapshot: IngestStatistics.Snapshot?

    public init(database: PostgresConfiguration, configuration: IngestConfiguration, kafka: KafkaConfiguration,
                topic: String, group: String, stop: StopSignal, logger: Logger = Logger(label: "audit-ingest.consume")) {
        self.topic = topic
        self.group = group
        self.kafka = kafka
        self.stop = stop
        self.logger = logger
        source = "kafka:\(group):\(topic)"
        store = OffsetStore(source: source)
        engine = IngestEngine(database: database, configuration: configuration, logger: logger)
    }

    /// Consumes until `stop` is raised (SIGTERM), or — with `exitWhenIdle` — until nothing has
    /// arrived for that long and every assigned partition is caught up. Then flushes what it
    /// holds, commits, leaves the group and returns.
    public func run(exitWhenIdle: Duration? = nil, reportEvery: Duration = .seconds(10)) throws -> ConsumeSummary {
        let started = ContinuousClock.now
        control = try engine.prepare()
        defer { control?.close() }
        let statistics = IngestStatistics(source: source, factory: engine.metricsFactory)
        self.statistics = statistics
        let createdBefore = engine.partitions.created
        let shards = ShardGroup(source: source, configuration: engine.configuration, database: engine.database,
                                partitions: engine.partitions, tenants: engine.tenants,
                                stored: StoredPositions(), statistics: statistics,
                                deadLetterSink: deadLetterSink, logger: logger)
        self.shards = shards
        shards.start()
        let consumer = try KafkaConsumer(configuration: kafka, group: group, topic: topic, handler: self, assignment: assignment,
                                         batchSize: min(engine.configuration.batchSize, 10_000))
        logger.info("consuming", metadata: ["topic": "\(topic)", "group": "\(group)", "assignment": "\(assignment)", "kafka": "\(kafka)"])

        var consumed = 0
        var lastMessage = ContinuousClock.now
        var lastReport = ContinuousClock.now
        var lastReportCount = 0
        var lastPublish = ContinuousClock.now
        var failure: Error?
        var backpressure = Backpressure(pauseAfter: pauseAfter, ringCapacity: engine.configuration.ringCapacity / 2)  // in messages: see applyBackpressure
        do {
            while !stop.isRaised && !shards.isStopping && fatal == nil {
                let room = try applyBackpressure(&backpressure, consumer, shards, statistics, consumed: &consumed)
                if room > 0 {
                    var nextOffsets: [Int32: Int64] = [:]
                    let count = try consumer.poll(timeoutMilliseconds: 100, maxMessages: room) { message in
                        handle(message, shards)
                        nextOffsets[message.partition] = message.offset + 1
                    }
                    for (partition, next) in nextOffsets {
                        shards.watermark(partition: partition, next: Mark(next: next, prefixHash: nil))
                    }
                    consumed += count
                    if count > 0 {
                        statistics.update { $0.received += count }
                        lastMessage = .now
                    }
                }
                if lastPublish.duration(to: .now) >= .seconds(1) {
                    publishStatus(consumer, statistics, shards)
                    lastPublish = .now
                }
                if lastReport.duration(to: .now) >= reportEvery {
                    let seconds = lastReport.duration(to: .now).secondsDouble
                    report(consumer, statistics, rate: Double(consumed - lastReportCount) / seconds)
                    commitStoredOffsets(to: consumer)
                    lastReport = .now
                    lastReportCount = consumed
                    if let control { try? engine.tenants.refreshIfStale(on: control) }
                }
                if let assigned = lastAssignment, assigned > lastMessage { lastMessage = assigned }
                if let exitWhenIdle, lastMessage.duration(to: .now) >= exitWhenIdle, isCaughtUp(consumer) {
                    logger.info("caught up and idle: stopping")
                    break
                }
            }
        } catch {
            failure = error
        }
        // Drain: flush what is held, record positions in Kafka for lag tools, leave the group.
        // Asked to stop (SIGTERM), this takes at most `stopTimeout`, PostgreSQL down or not:
        // what is not committed then is read again by the next run.
        var interrupted = false
        if failure == nil && fatal == nil {
            interrupted = !shards.drain(deadline: stop.isRaised ? .now + stopTimeout : nil)
            if interrupted { shards.stop() }
        }
        if !interrupted { commitStoredOffsets(to: consumer) }
        consumer.close()
        let finished = Result { try shards.finish() }
        deadLetterSink?.flush()
        if let failure { throw failure }
        if let fatal { throw fatal }
        if interrupted {
            throw IngestError(.interrupted, """
                stopped before everything held was committed (PostgreSQL did not answer within \
                \(Int(stopTimeout.secondsDouble)) s): nothing is lost, the next run reads those messages again
                """)
        }
        try finished.get()
        let snapshot = statistics.snapshot
        return ConsumeSummary(source: source, consumed: consumed, stored: snapshot.stored,
                              deadLettered: snapshot.deadLettered, alreadyCommitted: snapshot.alreadyCommitted,
                              partitionsCreated: engine.partitions.created - createdBefore,
                              seconds: started.duration(to: .now).secondsDouble)
    }

    /// Takes only what the rings can hold (with one watermark per partition and shard), so the
    /// polling thread never blocks in a full ring and keeps serving the group; pauses and resumes
    /// fetching as `backpressure` decides. Returns how many messages the next poll may take
    /// (0: none this round; it has waited or served the group protocol instead).
    private func applyBackpressure(_ backpressure: inout Backpressure, _ consumer: KafkaConsumer, _ shards: ShardGroup,
                                   _ statistics: IngestStatistics, consumed: inout Int) throws -> Int {
        // Each message takes a slot in its shard's ring, and each partition in a poll one
        // watermark slot in every ring: at most twice as many slots as messages, whatever the
        // number of partitions assigned (14,336 of them used to leave no room at all).
        let room = shards.isOverByteBudget ? 0 : shards.freeSlots / 2
        switch backpressure.update(room: room) {
        case .pause:
            logger.warning("flushers are behind: pausing fetches until they catch up", metadata: [
                "stalled_seconds": "\(pauseAfter.secondsDouble)", "ring_occupancy": "\(shards.ringOccupancy)"])
            statistics.update { $0.pauses += 1 }
        case .resume:
            logger.info("flushers caught up: fetching again")
            consumer.resume()
        case .none:
            break
        }
        if backpressure.isPaused { consumer.pause() }  // again each round: partitions assigned meanwhile too
        guard room < backpressure.minimumRoom else { return room }
        if backpressure.isPaused {
            // Serve the group protocol: a paused consumer receives at most a straggler fetched
            // before the pause took effect.
            let count = try consumer.poll(timeoutMilliseconds: 100, maxMessages: 1) { message in
                handle(message, shards)
                shards.watermark(partition: message.partition, next: Mark(next: message.offset + 1, prefixHash: nil))
            }
            if count > 0 { statistics.update { $0.received += count } }
            consumed += count
        } else {
            usleep(200)  // the flushers free room within a flush
        }
        return 0
    }

    private func handle(_ message: KafkaMessage, _ shards: ShardGroup) {
        if let resumed = resumedAt.removeValue(forKey: message.partition), message.offset > resumed {
            reportUnavailable(partition: message.partition, from: resumed, to: message.offset)
        }
        let next = Mark(next: message.offset + 1, prefixHash: nil)
        if let value = message.value {
            shards.submit(partition: message.partition, offset: message.offset, next: next, message: value)
        } else {
            shards.reject(partition: message.partition, offset: message.offset, next: next,
                          rawMessage: UnsafeRawBufferPointer(start: nil, count: 0),
                          rejection: Rejection(.emptyMessage, "null value (tombstone)"))
        }
    }

    // MARK: KafkaRebalanceHandler

    public func partitionsAssigned(_ partitions: [Int32]) -> [Int32: Int64] {
        guard let shards else { return [:] }
        logger.info("partitions assigned", metadata: ["partitions": "\(partitions)"])
        defer { lastAssignment = .now }
        var attempt = 0
        while !stop.isRaised {
            do {
                let stored = try store.adopt(partitions: partitions, shardCount: engine.configuration.shards,
                                             on: try controlConnection(), logger: logger)
                shards.resetPartitions(partitions, to: stored)
                var start: [Int32: Int64] = [:]
                for partition in partitions {
                    let resume = stored.resumeOffset(partition: partition)
                    if resume > 0 { start[partition] = resume }
                }
                resumedAt = start
                return start  // partitions never stored start at the earliest offset
            } catch let error as PostgresError where error.isRetriable {
                attempt += 1
                control?.close()
                control = nil
                logger.warning("cannot read offsets, retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                _ = RetryPolicy().wait(attempt: attempt, unless: stop)
            } catch {
                fatal = error
                shards.stop()
                return [:]
            }
        }
        return [:]
    }

    public func partitionsRevoked(_ partitions: [Int32]) {
        logger.info("partitions revoked: flushing in-flight events", metadata: ["partitions": "\(partitions)"])
        shards?.drain()
        statistics?.metrics?.forgetLag(partitions)
    }

    // MARK: Private

    /// The broker no longer had messages between the stored position and the first one it sent
    /// (retention deleted them before this group read them). They cannot be recovered; say so
    /// loudly and count them (`audit_ingest_kafka_messages_unavailable_total`).
    private func reportUnavailable(partition: Int32, from resumed: Int64, to first: Int64) {
        let missing = Int(first - resumed)
        logger.error("messages were deleted by the broker before they could be consumed", metadata: [
            "partition": "\(partition)", "stored_position": "\(resumed)", "first_available": "\(first)",
            "missing": "\(missing)",
        ])
        statistics?.update { $0.unavailable += missing }
    }

    /// True when partitions are assigned and the lag of every one is known and zero.
    private func isCaughtUp(_ consumer: KafkaConsumer) -> Bool {
        let assignment = consumer.assignment
        let lag = consumer.lag()
        return !assignment.isEmpty && assignment.allSatisfy { lag[$0] == 0 }
    }

    private func controlConnection() throws -> PostgresConnection {
        if let control, control.isOpen { return control }
        let fresh = try PostgresConnection(configuration: engine.database)
        control = fresh
        return fresh
    }

    /// Commits to Kafka what PostgreSQL holds (minimum over shards), for lag monitoring only.
    private func commitStoredOffsets(to consumer: KafkaConsumer) {
        let assignment = consumer.assignment
        guard !assignment.isEmpty, let rows = try? controlConnection().query("""
            SELECT "partition", min(next_offset) FROM ingest_offsets WHERE source = $1 AND "partition" = ANY($2::int[]) GROUP BY 1
            """, [source, OffsetStore.arrayLiteral(assignment)]).rows else { return }
        var offsets: [Int32: Int64] = [:]
        for row in rows {
            guard let partition = row[0].flatMap({ Int32($0) }), let next = row[1].flatMap({ Int64($0) }) else { continue }
            offsets[partition] = next
        }
        consumer.commit(offsets)
    }

    private func publishStatus(_ consumer: KafkaConsumer, _ statistics: IngestStatistics, _ shards: ShardGroup) {
        let snapshot = statistics.snapshot
        let lag = consumer.lag()
        let previous = status.currentStatus()?.alerts ?? [:]
        var alerts = previous
        alerts["consumer_lag"] = lag.values.reduce(0, +) > alertThresholds.consumerLag
        if let last = lastAlertSnapshot {
            let handled = (snapshot.stored + snapshot.deadLetteredTotal) - (last.stored + last.deadLetteredTotal)
            let dead = snapshot.deadLetteredTotal - last.deadLetteredTotal
            if handled >= 100 { alerts["dead_letter_rate"] = Double(dead) / Double(handled) > alertThresholds.deadLetterRate }
        }
        lastAlertSnapshot = snapshot
        for (name, firing) in alerts where firing && previous[name] != true {
            logger.warning("alert firing", metadata: ["alert": "\(name)", "lag": "\(lag.values.reduce(0, +))"])
        }
        statistics.metrics?.recordLag(lag)
        statistics.metrics?.recordRingOccupancy(shards.ringOccupancy)
        status.publish(PipelineStatus(source: source, statistics: snapshot, lag: lag, ringOccupancy: shards.ringOccupancy,
                                      ringCapacity: engine.configuration.ringCapacity, alerts: alerts))
    }

    private func report(_ consumer: KafkaConsumer, _ statistics: IngestStatistics, rate: Double) {
        let snapshot = statistics.snapshot
        let lag = consumer.lag().sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
        let flushLatency = snapshot.flushes > 0 ? snapshot.flushSeconds / Double(snapshot.flushes) * 1000 : 0
        logger.info("progress", metadata: [
            "events_per_second": "\(Int(rate))", "stored": "\(snapshot.stored)",
            "dead_lettered": "\(snapshot.deadLetteredTotal)", "lag": "\(lag)",
            "flush_ms_avg": "\(Int(flushLatency))", "ring_occupancy": "\(shards?.ringOccupancy ?? [])",
        ])
    }
}
