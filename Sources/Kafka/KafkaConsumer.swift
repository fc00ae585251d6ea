import CRdKafka
import Foundation

/// A high-level (group) consumer of topics (by name or pattern) with offsets managed by its owner: auto-commit is
/// off, positions come from the owner when it completes a `KafkaRebalance`, and `commit` exists
/// only for lag monitoring.
///
/// Single-threaded: one thread calls `poll` (which blocks up to its timeout in
/// `rd_kafka_consume_batch_queue`) and everything else. librdkafka's rebalance callback only
/// records the change (see KafkaConsumer+Rebalance.swift); the owner sees it in
/// `pendingRebalance` after `poll` returns. `handle` and `queue` are owned here and destroyed in
/// `close()` / `deinit`; `context` is passed to librdkafka unretained and outlives `handle`.
public final class KafkaConsumer {
    /// What the consumer reads: topics by name, or a pattern.
    public let subscription: Subscription
    public let group: String
    /// The topics met so far and the partition keys of their partitions.
    public let topics: KafkaTopics
    let handle: OpaquePointer
    private let queue: OpaquePointer
    let context: RebalanceContext
    private var isClosed = false
    /// A member of the consumer group (not a static assignment): it leaves the group on close.
    private let isGroupMember: Bool
    private var messages: [UnsafeMutablePointer<rd_kafka_message_t>?]
    /// The messages the last `poll` handed out: their bytes stay valid until the next `poll` (or
    /// `close`), which destroys them.
    private var lastPolled: [UnsafeMutablePointer<rd_kafka_message_t>] = []
    /// The topic handle of the last message and its topic's number: messages come in runs of
    /// one topic, so looking the number up is rarely needed.
    private var lastTopic: (handle: OpaquePointer, number: Int32)?

    /// Which partitions a consumer reads.
    public enum Assignment: Sendable, Equatable {
        /// Join the consumer group: the group protocol shares the topics' partitions out.
        case group
        /// Static assignment without group membership: every partition of each topic.
        case allPartitions
        /// Static assignment without group membership: these partitions of each topic.
        case partitions([Int32])
    }

    /// The topics a consumer reads.
    public enum Subscription: Sendable, Equatable, CustomStringConvertible {
        /// These topics (numbered in this order in `topics`).
        case topics([String])
        /// Every topic whose name matches this regular expression (librdkafka's syntax), now and
        /// as topics appear (seen at librdkafka's next metadata refresh,
        /// `topic.metadata.refresh.interval.ms`). Group membership only.
        case pattern(String)

        public var description: String {
            switch self {
            case .topics(let names): names.joined(separator: ",")
            case .pattern(let pattern): "^" + pattern.drop { $0 == "^" }
            }
        }
    }

    /// One topic: `init(configuration:group:subscription:...)` with `.topics([topic])`.
    public convenience init(configuration: KafkaConfiguration, group: String, topic: String,
                            assignment: Assignment = .group, batchSize: Int = 10_000) throws {
        try self.init(configuration: configuration, group: group, subscription: .topics([topic]),
                      assignment: assignment, batchSize: batchSize)
    }

    /// - Parameters:
    ///   - configuration: librdkafka properties; `bootstrap.servers` is required.
    ///   - assignment: with a static assignment, `pendingRebalance` is `.assigned` with those
    ///     partitions of every topic from the start, and nothing is ever revoked (`group` still
    ///     names the offsets committed for lag tools). A pattern needs group membership.
    ///   - topics: the table to number topics in (shared with the owner, which resolves keys on
    ///     other threads); default: a new one. The subscribed topics are numbered first, in order.
    public init(configuration: KafkaConfiguration, group: String, subscription: Subscription, topics: KafkaTopics = KafkaTopics(),
                assignment: Assignment = .group, batchSize: Int = 10_000) throws {
        self.subscription = subscription
        self.group = group
        isGroupMember = assignment == .group
        var configuration = configuration
        configuration["group.id"] = group
        configuration["enable.auto.commit"] = "false"
        configuration["enable.auto.offset.store"] = "false"
        if configuration["auto.offset.reset"] == nil { configuration["auto.offset.reset"] = "earliest" }
        if configuration["enable.partition.eof"] == nil { configuration["enable.partition.eof"] = "false" }
        let conf = try configuration.makeConf()
        if case .topics(let names) = subscription { topics.add(names) }
        self.topics = topics
        context = RebalanceContext(topics: topics, assignmentStrategy: configuration["partition.assignment.strategy"])
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        Self.installErrorCallback(on: conf)
        var errorText = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(configuration: string(fromCBuffer: errorText))
        }
        self.handle = handle
        rd_kafka_poll_set_consumer(handle)
        queue = rd_kafka_queue_get_consumer(handle)
        messages = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: batchSize)

        // Fully initialized from here: a throw runs deinit, which frees the handle and queue.
        if assignment == .group {
            try subscribe()
        } else {
            context.pending = .staticAssignment(try staticPartitionKeys(assignment))
        }
    }

    deinit {
        close()
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands each to `body`, in order per
    /// partition; a message's bytes stay valid until the next `poll`. Returns the number of messages. A rebalance during the call ends up in
    /// `pendingRebalance`; while one is pending, `poll` returns 0 at once: complete it first.
    /// Throws for a fatal client error; transient ones are logged by librdkafka and retried.
    /// - Parameter maxMessages: at most this many (and at most the batch size given at init).
    @discardableResult
    public func poll(timeoutMilliseconds: Int32, maxMessages: Int = .max, _ body: (KafkaMessage) -> Void) throws -> Int {
        destroyLastPolled()
        if let failure = context.fatalError { throw failure }
        guard context.pending == nil else { return 0 }
        let count = messages.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_consume_batch_queue(queue, timeoutMilliseconds, buffer.baseAddress, max(1, min(maxMessages, buffer.count)))
        }
        guard count >= 0 else { throw KafkaError(code: rd_kafka_last_error()) }
        var delivered = 0
        // Messages come in runs of one partition: its assignment and floor are looked up when a
        // run starts, and where it has reached is written back when it ends.
        var run: (key: Int32, floor: Int64, handedOut: Bool)?
        func endRun() { if let run, run.handedOut { context.positions[run.key] = run.floor } }
        defer { endRun() }
        for index in 0..<count {
            guard let message = messages[index] else { continue }
            var keep = false
            defer { if keep { lastPolled.append(message) } else { rd_kafka_message_destroy(message) } }
            let fields = message.pointee
            if fields.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if fields.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                var fatalText = [CChar](repeating: 0, count: 512)
                if rd_kafka_fatal_error(handle, &fatalText, fatalText.count) != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError(code: fields.err, message: string(fromCBuffer: fatalText), isFatal: true)
                }
                continue  // consumer errors (broker down, ...) are informational: librdkafka retries
            }
            // An earlier rebalance may have released the partition (librdkafka may still hold
            // messages it fetched before) or re-assigned it at another offset (it fetches again
            // from there): hand out only what the current assignment reads next. A partition
            // whose revocation is pending is still this consumer's: its messages are handed out.
            guard let key = partitionKey(fields.rkt, fields.partition) else { continue }
            if key != run?.key {
                endRun()
                run = nil
                guard context.assigned.contains(key) else { continue }
                run = (key, context.positions[key] ?? context.assignedOffsets[key] ?? -1, false)
            }
            if fields.offset < run!.floor { continue }  // a logical floor (BEGINNING, ...) is negative
            run!.floor = fields.offset + 1
            run!.handedOut = true
            let timestamp = rd_kafka_message_timestamp(message, nil)
            keep = true
            body(KafkaMessage(
                partitionKey: key, offset: fields.offset,
                value: fields.payload.map { UnsafeRawBufferPointer(start: $0, count: fields.len) },
                key: fields.key.map { UnsafeRawBufferPointer(start: $0, count: fields.key_len) },
                timestamp: timestamp >= 0 ? timestamp : nil, message: message))
            delivered += 1
        }
        if delivered > 0 { context.brokers.markUp() }  // a fetch came back: a broker answers
        KafkaLogRelay.shared.flushRepeats()
        if let failure = context.fatalError { throw failure }
        return delivered
    }

    private func destroyLastPolled() {
        for message in lastPolled { rd_kafka_message_destroy(message) }
        lastPolled.removeAll(keepingCapacity: true)
    }

    /// The partition key of a message's topic handle and partition (nil when it holds no more).
    @inline(__always)
    private func partitionKey(_ topicHandle: OpaquePointer?, _ partition: Int32) -> Int32? {
        guard let topicHandle else { return nil }
        if let lastTopic, lastTopic.handle == topicHandle, partition >> KafkaTopics.partitionBits == 0 {
            return lastTopic.number << KafkaTopics.partitionBits | partition
        }
        guard let key = topics.key(topic: String(cString: rd_kafka_topic_name(topicHandle)), partition: partition) else { return nil }
        lastTopic = (topicHandle, key >> KafkaTopics.partitionBits)
        return key
    }

    /// Commits `offsets` (partition key -> next offset) to the group, asynchronously: for lag
    /// tools only; the truth is in PostgreSQL.
    public func commit(_ offsets: [Int32: Int64]) {
        guard !offsets.isEmpty, !isClosed else { return }
        let list = partitionList(offsets.keys) { offsets[$0]! }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_commit(handle, list, 1)
    }

    /// Leaves the group. Idempotent. A revocation during the close is completed at once: the
    /// owner has flushed what it holds before closing.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        destroyLastPolled()
        // librdkafka waits for an announced rebalance to be completed before it can leave.
        if let pending = context.pending, pending.origin == .group {
            if case .assigned = pending.rebalance { try? assign(startingAt: [:]) } else { release() }
        }
        if isGroupMember { leaveGroup(within: .seconds(10)) }
        context.isClosing = true
        rd_kafka_consumer_close(handle)
    }

    /// Leaves the group before `rd_kafka_consumer_close`: librdkafka 2.0.2 can wait for good inside
    /// the close when the revocation it announces there is completed from its own callback
    /// (`rd_kafka_assign` never gets its reply; librdkafka issues 4884 and 4041). Seen here as a
    /// test run hung in `close()`. So: unsubscribe, complete the revocation that follows as after
    /// any poll, and drop what still arrives (the owner has flushed, and the positions are its
    /// own), until nothing is assigned or `limit` has passed.
    private func leaveGroup(within limit: Duration) {
        guard rd_kafka_unsubscribe(handle) == RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        let deadline = ContinuousClock.now.advanced(by: limit)
        while ContinuousClock.now < deadline {
            switch context.pending?.rebalance {
            case .assigned?: try? assign(startingAt: [:])
            case .revoked?, .lost?: release()
            case nil: if context.assigned.isEmpty { return }
            }
            // What still arrives is dropped; a fatal error ends the wait (the close follows).
            guard (try? poll(timeoutMilliseconds: 100) { _ in }) != nil else { return }
        }
    }
}
