import AuditCore
import Foundation
import Kafka
import Logging
import Postgres
import Synchronization

/// Kafka as a source of the engine: a consumer of topics (by name or pattern) whose positions
/// live in PostgreSQL: each topic's under `kafka:<group>:<topic>` in ingest_offsets, with its
/// partition numbers, whatever else the run reads. The engine sees partition keys
/// (`KafkaTopics`), which are the partition numbers when there is one topic.
///
/// Exactly once across crashes and rebalances: an assignment is completed only once the engine
/// has adopted the stored positions (each partition resumes at the lowest position any shard
/// stored, and each shard skips what it already has); a revocation only once everything handed
/// over is committed. Both arrive from `KafkaConsumer.poll` as `pendingRebalance`, in order with
/// the messages, and the engine handles them on its thread, never inside librdkafka.
package final class KafkaSource: IngestSource {
    package struct Options: Sendable {
        /// Group membership (the default) or a static set of partitions.
        package var assignment: KafkaConsumer.Assignment = .group
        /// How long the rings may stay (nearly) full before fetching pauses; well under
        /// max.poll.interval.ms (300 s by default). Default: 2 s.
        package var pauseAfter: Duration = .seconds(2)
        /// Stop once nothing has arrived for this long and every assigned partition is caught up.
        package var exitWhenIdle: Duration?
        /// How often to log progress and record positions in Kafka for lag tools. Default: 10 s.
        package var reportEvery: Duration = .seconds(10)
        package var alertThresholds = AlertThresholds()
        /// How long a rebalance may wait for PostgreSQL (positions to adopt, a drain to commit):
        /// under max.poll.interval.ms (300 s by default), after which librdkafka leaves the group.
        /// Default: 240 s.
        package var rebalanceTimeout: Duration = .seconds(240)

        package init(assignment: KafkaConsumer.Assignment = .group, pauseAfter: Duration = .seconds(2),
                    exitWhenIdle: Duration? = nil, reportEvery: Duration = .seconds(10),
                    alertThresholds: AlertThresholds = AlertThresholds()) {
            self.assignment = assignment
            self.pauseAfter = pauseAfter
            self.exitWhenIdle = exitWhenIdle
            self.reportEvery = reportEvery
            self.alertThresholds = alertThresholds
        }
    }

    package let subscription: KafkaConsumer.Subscription
    package let group: String
    /// The topics met so far; the consumer numbers partitions with it.
    private let topics: KafkaTopics
    package let options: Options
    /// Where the admin server reads the live status (updated about once a second).
    package let status = PipelineStatusBox()
    private let kafka: KafkaConfiguration
    private let logger: Logger
    private var consumer: KafkaConsumer?
    private var monitor: KafkaMonitor?
    private var run: SourceRun?
    private var batch = SourceBatch()
    /// When partitions were last assigned or messages last arrived (idleness counts from there).
    private var lastActivity = ContinuousClock.now
    private var lastPositionsCommit = ContinuousClock.now
    private var clock = ThreadClock.system
    /// Per newly assigned partition with a stored position: that position, until its first
    /// message shows whether the broker still had it.
    private var resumedAt: [Int32: Int64] = [:]
    private var consumed: Int64 = 0
    private var isPaused = false
    /// Messages are handed over with their context (headers, ...): the run keeps or maps some.
    private var withContext = false
    /// When partitions were first assigned and when the run finished (read by the command for
    /// its summary, after the run, on another thread).
    private let timing = Mutex<(firstAssignment: ContinuousClock.Instant?, finished: ContinuousClock.Instant?)>((nil, nil))

    package convenience init(kafka: KafkaConfiguration, topic: String, group: String, options: Options = Options(),
                            logger: Logger = Logger(label: "audit-ingest.consume")) {
        self.init(kafka: kafka, subscription: .topics([topic]), group: group, options: options, logger: logger)
    }

    package init(kafka: KafkaConfiguration, subscription: KafkaConsumer.Subscription, group: String, options: Options = Options(),
                logger: Logger = Logger(label: "audit-ingest.consume")) {
        self.kafka = kafka
        self.subscription = subscription
        if case .topics(let names) = subscription { topics = KafkaTopics(names) } else { topics = KafkaTopics() }
        self.group = group
        self.options = options
        self.logger = logger
    }

    /// `kafka:<group>:<topic>`; with several topics or a pattern, the run's name only (each
    /// topic's positions are under its own source, see `streams(named:)`).
    package func identify(on control: PostgresConnection) throws -> String { "kafka:\(group):\(subscription)" }

    package func streams(named name: String) -> SourceStreams {
        if case .topics(let names) = subscription, names.count == 1 { return .single(name) }
        let (group, topics) = (group, topics)
        return SourceStreams(name: name) { key in
            SourceStreams.Location(source: "kafka:\(group):\(topics.topic(of: key))", partition: KafkaTopics.partition(of: key))
        }
    }

    package var rebalanceTimeout: Duration? { options.rebalanceTimeout }
    package var pauseAfter: Duration? { options.pauseAfter }
    package var totals: SourceTotals { SourceTotals(messages: consumed) }

    package func open(_ run: SourceRun) throws {
        let consumer = try KafkaConsumer(configuration: kafka, group: group, subscription: subscription, topics: topics,
                                         assignment: options.assignment, batchSize: min(run.configuration.batchSize, 10_000))
        withContext = run.configuration.needsMessageContext
        batch = SourceBatch(reservingCapacity: min(run.configuration.batchSize, 10_000))
        self.consumer = consumer
        self.run = run
        clock = run.configuration.clock
        (lastActivity, lastPositionsCommit) = (clock.now(), clock.now())
        monitor = KafkaMonitor(consumer: consumer, run: run, status: status, options: options, logger: logger)
        logger.info("consuming", metadata: [LogKey.topic: "\(subscription)", LogKey.group: "\(group)", LogKey.assignment: "\(options.assignment)",
                                            LogKey.kafka: "\(kafka)"])
    }

    /// A pending rebalance first (librdkafka waits for it), else a poll of up to `room` messages
    /// (100 ms at most). `.end` once idle for `exitWhenIdle` with every partition caught up.
    package func next(room: Int) throws -> SourceEvent {
        guard let consumer, let run else { preconditionFailure("open first") }
        switch consumer.pendingRebalance {
        case .assigned(let partitions): return .assigned(partitions)
        case .revoked(let partitions): return .revoked(partitions)
        case .lost(let partitions): return .lost(partitions)
        case nil: break
        }
        guard room > 0 else { return .idle }  // rebalances only: the rings are full
        if isPaused { consumer.pause() }  // again each round: partitions assigned meanwhile too
        batch.removeAll()
        var lastTimestamp: (partition: Int32, timestamp: Int64?)?
        let count = try consumer.poll(timeoutMilliseconds: 100, maxMessages: room) { message in
            if !resumedAt.isEmpty, let resumed = resumedAt.removeValue(forKey: message.partitionKey), message.offset > resumed {
                reportUnavailable(partition: message.partitionKey, from: resumed, to: message.offset, run.statistics)
            }
            append(message)
            if let last = lastTimestamp, last.partition != message.partitionKey, let timestamp = last.timestamp {
                monitor?.read(partition: last.partition, timestamp: timestamp)
            }
            lastTimestamp = (message.partitionKey, message.timestamp)
        }
        if let last = lastTimestamp, let timestamp = last.timestamp { monitor?.read(partition: last.partition, timestamp: timestamp) }
        consumed += Int64(count)
        if count > 0 {
            lastActivity = clock.now()
            return .messages(batch)
        }
        if let exitWhenIdle = options.exitWhenIdle, lastActivity.duration(to: clock.now()) >= exitWhenIdle, monitor?.isCaughtUp == true {
            logger.info("caught up and idle: stopping")
            return .end
        }
        return .idle
    }

    /// Starts each partition at the position PostgreSQL holds; partitions never stored start at
    /// the earliest offset the broker has.
    package func confirm(_ partitions: [Int32], stored: StoredPositions) throws {
        var start: [Int32: Int64] = [:]
        for partition in partitions {
            let resume = stored.resumeOffset(partition: partition)
            if resume > 0 { start[partition] = resume }
        }
        resumedAt.merge(start) { $1 }
        try consumer?.assign(startingAt: start)
        let now = clock.now()
        timing.withLock { if $0.firstAssignment == nil { $0.firstAssignment = now } }
        lastActivity = now
    }

    package func release(_ partitions: [Int32]) throws {
        consumer?.release()
        monitor?.revoked(partitions)
        lastActivity = clock.now()
    }

    package func pause() {
        isPaused = true
        consumer?.pause()
        monitor?.pausedSince = clock.now()
    }

    package func resume() {
        isPaused = false
        consumer?.resume()
        monitor?.pausedSince = nil
    }

    /// Status about once a second, progress and positions for lag tools every `reportEvery`.
    package func tick() {
        let firstAssignment = timing.withLock { $0.firstAssignment }
        monitor?.tick(consumed: consumed, firstAssignment: firstAssignment)
        if lastPositionsCommit.duration(to: clock.now()) >= options.reportEvery {
            lastPositionsCommit = clock.now()
            commitStoredPositions()
        }
    }

    /// Records in Kafka what PostgreSQL holds (for lag tools) and leaves the group.
    package func finish(committed: Bool) {
        let now = clock.now()
        timing.withLock { $0.finished = now }
        if committed { commitStoredPositions() }
        consumer?.close()
    }

    /// Seconds from the first partition assignment to the end of the run (or now): the run's
    /// time without the group join. nil when nothing was ever assigned.
    package var secondsSinceFirstAssignment: Double? {
        let now = clock.now()
        return timing.withLock { timing in timing.firstAssignment.map { $0.duration(to: timing.finished ?? now).secondsDouble } }
    }

    /// Commits to Kafka what PostgreSQL holds (the lowest position over shards), for lag
    /// monitoring only: the truth is in PostgreSQL.
    private func commitStoredPositions() {
        guard let consumer, let positions = run?.lowestStoredPositions(consumer.assignment) else { return }
        consumer.commit(positions)
    }

    /// One message into the batch (its bytes stay valid until the next poll), and its partition's
    /// watermark past it.
    private func append(_ message: KafkaMessage) {
        let next = Mark(next: message.offset + 1, prefixHash: nil)
        if let value = message.value {
            batch.append(partition: message.partitionKey, offset: message.offset, next: next, bytes: value,
                         context: withContext ? Self.context(of: message) : nil)
        } else {
            batch.reject(partition: message.partitionKey, offset: message.offset, next: next,
                         raw: UnsafeRawBufferPointer(start: nil, count: 0), rejection: Rejection(.emptyMessage, "null value (tombstone)"))
        }
        batch.watermark(partition: message.partitionKey, next: next)
    }

    /// The broker no longer had messages between the stored position and the first one it sent
    /// (retention deleted them before this group read them). They cannot be recovered; say so
    /// loudly and count them (`audit_ingest_kafka_messages_unavailable_total`).
    private func reportUnavailable(partition: Int32, from resumed: Int64, to first: Int64, _ statistics: IngestStatistics) {
        let missing = Int(first - resumed)
        logger.error("messages were deleted by the broker before they could be consumed", metadata: [
            LogKey.partition: "\(partition)", LogKey.storedPosition: "\(resumed)", LogKey.firstAvailable: "\(first)",
            LogKey.missing: "\(missing)",
        ])
        statistics.update { $0.unavailable += missing }
    }
}

extension KafkaSource {
    /// What `message` came with besides its value, for the engine to keep or map.
    static func context(of message: KafkaMessage) -> MessageContext {
        MessageContext(topic: message.topic, partition: message.partition, offset: message.offset, timestamp: message.timestamp,
                       key: message.key.map { Array($0) },
                       headers: message.headers().map { MessageContext.Header(name: $0.name, value: $0.value) })
    }
}
