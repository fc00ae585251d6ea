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
/// the messages, and are handled here on the polling thread, never inside librdkafka.
public final class KafkaSource: IngestSource {
    public struct Options: Sendable {
        /// Group membership (the default) or a static set of partitions.
        public var assignment: KafkaConsumer.Assignment = .group
        /// How long the rings may stay (nearly) full before fetching pauses; well under
        /// max.poll.interval.ms (300 s by default). Default: 2 s.
        public var pauseAfter: Duration = .seconds(2)
        /// Stop once nothing has arrived for this long and every assigned partition is caught up.
        public var exitWhenIdle: Duration?
        /// How often to log progress and record positions in Kafka for lag tools. Default: 10 s.
        public var reportEvery: Duration = .seconds(10)
        public var alertThresholds = AlertThresholds()
        /// How long a rebalance may wait for PostgreSQL (positions to adopt, a drain to commit):
        /// under max.poll.interval.ms (300 s by default), after which librdkafka leaves the group.
        /// Default: 240 s.
        public var rebalanceTimeout: Duration = .seconds(240)

        public init(assignment: KafkaConsumer.Assignment = .group, pauseAfter: Duration = .seconds(2),
                    exitWhenIdle: Duration? = nil, reportEvery: Duration = .seconds(10),
                    alertThresholds: AlertThresholds = AlertThresholds()) {
            self.assignment = assignment
            self.pauseAfter = pauseAfter
            self.exitWhenIdle = exitWhenIdle
            self.reportEvery = reportEvery
            self.alertThresholds = alertThresholds
        }
    }

    public let subscription: KafkaConsumer.Subscription
    public let group: String
    /// The topics met so far; the consumer numbers partitions with it.
    private let topics: KafkaTopics
    public let options: Options
    /// Where the admin server reads the live status (updated about once a second).
    public let status = PipelineStatusBox()
    private let kafka: KafkaConfiguration
    private let logger: Logger
    private var consumer: KafkaConsumer?
    private var monitor: KafkaMonitor?
    /// When partitions were last assigned (idleness counts from there).
    private var lastActivity = ContinuousClock.now
    /// Per newly assigned partition with a stored position: that position, until its first
    /// message shows whether the broker still had it.
    private var resumedAt: [Int32: Int64] = [:]
    private var consumed: Int64 = 0
    /// Messages are handed over with their context (headers, ...): the run keeps or maps some.
    private var withContext = false
    /// When partitions were first assigned and when the run finished (read by the command for
    /// its summary, after the run, on another thread).
    private let timing = Mutex<(firstAssignment: ContinuousClock.Instant?, finished: ContinuousClock.Instant?)>((nil, nil))

    public convenience init(kafka: KafkaConfiguration, topic: String, group: String, options: Options = Options(),
                            logger: Logger = Logger(label: "audit-ingest.consume")) {
        self.init(kafka: kafka, subscription: .topics([topic]), group: group, options: options, logger: logger)
    }

    public init(kafka: KafkaConfiguration, subscription: KafkaConsumer.Subscription, group: String, options: Options = Options(),
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
    public func identify(on control: PostgresConnection) throws -> String { "kafka:\(group):\(subscription)" }

    public func streams(named name: String) -> SourceStreams {
        if case .topics(let names) = subscription, names.count == 1 { return .single(name) }
        let (group, topics) = (group, topics)
        return SourceStreams(name: name) { key in
            SourceStreams.Location(source: "kafka:\(group):\(topics.topic(of: key))", partition: KafkaTopics.partition(of: key))
        }
    }

    public func run(into feed: IngestFeed) throws -> SourceTotals {
        let consumer = try KafkaConsumer(configuration: kafka, group: group, subscription: subscription, topics: topics,
                                         assignment: options.assignment, batchSize: min(feed.configuration.batchSize, 10_000))
        withContext = feed.configuration.needsMessageContext
        self.consumer = consumer
        let monitor = KafkaMonitor(consumer: consumer, feed: feed, status: status, options: options, logger: logger)
        self.monitor = monitor
        logger.info("consuming", metadata: ["topic": "\(subscription)", "group": "\(group)", "assignment": "\(options.assignment)",
                                            "kafka": "\(kafka)"])
        var backpressure = Backpressure(pauseAfter: options.pauseAfter, ringCapacity: feed.configuration.ringCapacity / 2)
        while !feed.shouldStop {
            if let rebalance = consumer.pendingRebalance {
                try complete(rebalance, consumer, feed)
                continue
            }
            let room = try makeRoom(&backpressure, consumer, feed)
            if room > 0 { try poll(consumer, feed, maxMessages: room) }
            monitor.tick(consumed: consumed)
            if let exitWhenIdle = options.exitWhenIdle, lastActivity.duration(to: .now) >= exitWhenIdle,
               monitor.isCaughtUp {
                logger.info("caught up and idle: stopping")
                break
            }
        }
        return SourceTotals(messages: consumed)
    }

    /// Records in Kafka what PostgreSQL holds (for lag tools) and leaves the group.
    public func finish(committed: Bool) {
        timing.withLock { $0.finished = .now }
        if committed { monitor?.commitStoredPositions() }
        consumer?.close()
    }

    /// Seconds from the first partition assignment to the end of the run (or now): the run's
    /// time without the group join. nil when nothing was ever assigned.
    public var secondsSinceFirstAssignment: Double? {
        timing.withLock { timing in timing.firstAssignment.map { $0.duration(to: timing.finished ?? .now).secondsDouble } }
    }

    /// Does what a rebalance needs, then lets librdkafka go on. PostgreSQL must answer within
    /// `Options.rebalanceTimeout`: past it the run ends (nothing is lost) rather than hold the
    /// group past max.poll.interval.ms.
    private func complete(_ rebalance: KafkaRebalance, _ consumer: KafkaConsumer, _ feed: IngestFeed) throws {
        switch rebalance {
        case .assigned(let partitions):
            logger.info("partitions assigned", metadata: ["partitions": "\(partitions)"])
            guard let stored = try feed.assign(partitions, within: options.rebalanceTimeout) else { return }  // stopping
            var start: [Int32: Int64] = [:]
            for partition in partitions {
                let resume = stored.resumeOffset(partition: partition)
                if resume > 0 { start[partition] = resume }
            }
            resumedAt.merge(start) { $1 }
            try consumer.assign(startingAt: start)  // partitions never stored start at the earliest offset
            monitor?.assigned()
            timing.withLock { if $0.firstAssignment == nil { $0.firstAssignment = .now } }
        case .revoked(let partitions):
            guard try feed.revoke(partitions, within: options.rebalanceTimeout) else { return }  // a flusher failed or a stop
            consumer.release()
            monitor?.revoked(partitions)
        case .lost(let partitions):
            // Taken away without a handover (session timeout, max.poll.interval.ms). What is in
            // flight is committed anyway: the compare-and-set in each flush refuses it if the new
            // owner has committed these partitions since, so nothing is stored twice; ending the
            // run instead would turn every missed heartbeat under load into a restart.
            logger.warning("partitions lost without a handover: committing what is in flight (fenced if another member already took over)",
                           metadata: ["partitions": "\(partitions)"])
            guard try feed.revoke(partitions, within: options.rebalanceTimeout) else { return }
            consumer.release()
            monitor?.revoked(partitions)
        }
        lastActivity = .now
    }

    private func poll(_ consumer: KafkaConsumer, _ feed: IngestFeed, maxMessages: Int) throws {
        // Per partition, where its last message of this poll leaves it. Messages come in runs of
        // one partition: the run's end is recorded when the partition changes, not per message.
        var latest: [Int32: (next: Int64, timestamp: Int64?)] = [:]
        var run: (partition: Int32, next: Int64, timestamp: Int64?)?
        let count = try consumer.poll(timeoutMilliseconds: 100, maxMessages: maxMessages) { message in
            hand(message, to: feed)
            if let ended = run, ended.partition != message.partitionKey { latest[ended.partition] = (ended.next, ended.timestamp) }
            run = (message.partitionKey, message.offset + 1, message.timestamp)
        }
        if let run { latest[run.partition] = (run.next, run.timestamp) }
        for (partition, last) in latest {
            try feed.watermark(partition: partition, next: Mark(next: last.next, prefixHash: nil))
            if let timestamp = last.timestamp { monitor?.read(partition: partition, timestamp: timestamp) }
        }
        consumed += Int64(count)
        if count > 0 { lastActivity = .now }
    }

    /// Takes only what the rings can hold, so the polling thread never blocks in a full ring and
    /// keeps serving the group; pauses and resumes fetching as `backpressure` decides. Returns how
    /// many messages the next poll may take (0: none this round; it has waited or served the
    /// group protocol instead).
    private func makeRoom(_ backpressure: inout Backpressure, _ consumer: KafkaConsumer, _ feed: IngestFeed) throws -> Int {
        let room = feed.room
        switch backpressure.update(room: room) {
        case .pause:
            logger.warning("flushers are behind: pausing fetches until they catch up", metadata: [
                "stalled_seconds": "\(options.pauseAfter.secondsDouble)", "ring_occupancy": "\(feed.ringOccupancy)"])
            feed.statistics.update { $0.pauses += 1 }
            monitor?.pausedSince = .now
        case .resume:
            logger.info("flushers caught up: fetching again")
            consumer.resume()
            monitor?.pausedSince = nil
        case .none:
            break
        }
        if backpressure.isPaused { consumer.pause() }  // again each round: partitions assigned meanwhile too
        guard room < backpressure.minimumRoom else { return room }
        if backpressure.isPaused {
            // Serve the group protocol: a paused consumer receives at most a straggler fetched
            // before the pause took effect.
            try poll(consumer, feed, maxMessages: 1)
        } else {
            feed.waitForRoom(backpressure.minimumRoom, timeout: .milliseconds(2))  // a flusher frees room within a flush
        }
        return 0
    }

    private func hand(_ message: KafkaMessage, to feed: IngestFeed) {
        if !resumedAt.isEmpty, let resumed = resumedAt.removeValue(forKey: message.partitionKey), message.offset > resumed {
            reportUnavailable(partition: message.partitionKey, from: resumed, to: message.offset, feed.statistics)
        }
        let next = Mark(next: message.offset + 1, prefixHash: nil)
        if let value = message.value {
            feed.message(partition: message.partitionKey, offset: message.offset, next: next, bytes: value,
                         context: withContext ? Self.context(of: message) : nil)
        } else {
            feed.reject(partition: message.partitionKey, offset: message.offset, next: next,
                        rawMessage: UnsafeRawBufferPointer(start: nil, count: 0),
                        rejection: Rejection(.emptyMessage, "null value (tombstone)"))
        }
    }

    /// The broker no longer had messages between the stored position and the first one it sent
    /// (retention deleted them before this group read them). They cannot be recovered; say so
    /// loudly and count them (`audit_ingest_kafka_messages_unavailable_total`).
    private func reportUnavailable(partition: Int32, from resumed: Int64, to first: Int64, _ statistics: IngestStatistics) {
        let missing = Int(first - resumed)
        logger.error("messages were deleted by the broker before they could be consumed", metadata: [
            "partition": "\(partition)", "stored_position": "\(resumed)", "first_available": "\(first)",
            "missing": "\(missing)",
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
