import CRdKafka
import Foundation

/// A change of the partitions a consumer reads, handed to its owner by `poll` (never through a
/// callback): the owner finishes what it must (loads positions, flushes in-flight work) and then
/// completes it with `assign(startingAt:)` or `release()`. Until then `poll` fetches nothing new.
public enum KafkaRebalance: Sendable, Equatable {
    /// These partitions are now this consumer's: say where each starts with `assign(startingAt:)`.
    case assigned([Int32])
    /// These partitions are being taken away. They are still this consumer's (nobody else reads
    /// them) until `release()`: finish in-flight work for them first.
    case revoked([Int32])
    /// These partitions were taken away without a handover (the session timed out, or the
    /// consumer did not poll within max.poll.interval.ms): another member may own them already.
    /// Complete with `release()`.
    case lost([Int32])

    public var partitions: [Int32] {
        switch self {
        case .assigned(let partitions), .revoked(let partitions), .lost(let partitions): partitions
        }
    }

    /// The partitions a revocation or a loss takes away (nil for an assignment).
    public var revokedPartitions: [Int32]? {
        switch self {
        case .assigned: nil
        case .revoked(let partitions), .lost(let partitions): partitions
        }
    }
}

/// One consumed message; valid only inside the `poll` callback.
public struct KafkaMessage {
    public let partition: Int32
    public let offset: Int64
    /// nil for a null value (a tombstone).
    public let value: UnsafeRawBufferPointer?
    public let key: UnsafeRawBufferPointer?
    /// The Kafka timestamp (producer's create time or broker's log-append time), milliseconds
    /// since the Unix epoch; nil when the message has none.
    public let timestamp: Int64?
}

/// A high-level (group) consumer of one topic with offsets managed by its owner: auto-commit is
/// off, positions come from the owner when it completes a `KafkaRebalance`, and `commit` exists
/// only for lag monitoring.
///
/// Single-threaded: one thread calls `poll` (which blocks up to its timeout in
/// `rd_kafka_consume_batch_queue`) and everything else. librdkafka's rebalance callback only
/// records the change (see KafkaConsumer+Rebalance.swift); the owner sees it in
/// `pendingRebalance` after `poll` returns. `handle` and `queue` are owned here and destroyed in
/// `close()` / `deinit`; `context` is passed to librdkafka unretained and outlives `handle`.
public final class KafkaConsumer {
    public let topic: String
    public let group: String
    let handle: OpaquePointer
    private let queue: OpaquePointer
    let context: RebalanceContext
    private var isClosed = false
    private var messages: [UnsafeMutablePointer<rd_kafka_message_t>?]

    /// Which partitions a consumer reads.
    public enum Assignment: Sendable, Equatable {
        /// Join the consumer group: the group protocol shares the topic's partitions out.
        case group
        /// Static assignment without group membership: every partition of the topic.
        case allPartitions
        /// Static assignment without group membership: these partitions.
        case partitions([Int32])
    }

    /// - Parameters:
    ///   - configuration: librdkafka properties; `bootstrap.servers` is required.
    ///   - assignment: with a static assignment, `pendingRebalance` is `.assigned` with those
    ///     partitions from the start, and nothing is ever revoked (`group` still names the offsets
    ///     committed for lag tools).
    public init(configuration: KafkaConfiguration, group: String, topic: String,
                assignment: Assignment = .group, batchSize: Int = 10_000) throws {
        self.topic = topic
        self.group = group
        var configuration = configuration
        configuration["group.id"] = group
        configuration["enable.auto.commit"] = "false"
        configuration["enable.auto.offset.store"] = "false"
        if configuration["auto.offset.reset"] == nil { configuration["auto.offset.reset"] = "earliest" }
        if configuration["enable.partition.eof"] == nil { configuration["enable.partition.eof"] = "false" }
        let conf = try configuration.makeConf()
        context = RebalanceContext(topic: topic)
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
        switch assignment {
        case .group: try subscribe()
        case .allPartitions: context.pending = .staticAssignment((0..<(try partitionCount())).map(Int32.init))
        case .partitions(let partitions):
            let count = try partitionCount()
            if let missing = partitions.first(where: { $0 >= count }) {
                throw KafkaError(code: RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
                                 message: "partition \(missing) does not exist: \(topic) has \(count) partition(s), 0-\(count - 1)",
                                 topic: topic, partition: missing)
            }
            context.pending = .staticAssignment(partitions)
        }
    }

    private func subscribe() throws {
        let subscription = rd_kafka_topic_partition_list_new(1)
        rd_kafka_topic_partition_list_add(subscription, topic, RD_KAFKA_PARTITION_UA)
        defer { rd_kafka_topic_partition_list_destroy(subscription) }
        let error = rd_kafka_subscribe(handle, subscription)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: error, topic: topic) }
    }

    /// The topic's partition count, from the cluster's metadata (waits up to 10 s).
    private func partitionCount() throws -> Int {
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaError(code: rd_kafka_last_error(), topic: topic)
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, 10_000)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(code: error, topic: topic) }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else { throw KafkaError(code: RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, topic: topic) }
        let description = metadata.pointee.topics[0]
        guard description.err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: description.err, topic: topic) }
        return Int(description.partition_cnt)
    }

    deinit {
        close()
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands each to `body`, in order per
    /// partition. Returns the number of messages. A rebalance during the call ends up in
    /// `pendingRebalance`; while one is pending, `poll` returns 0 at once: complete it first.
    /// Throws for a fatal client error; transient ones are logged by librdkafka and retried.
    /// - Parameter maxMessages: at most this many (and at most the batch size given at init).
    @discardableResult
    public func poll(timeoutMilliseconds: Int32, maxMessages: Int = .max, _ body: (KafkaMessage) -> Void) throws -> Int {
        if let failure = context.fatalError { throw failure }
        guard context.pending == nil else { return 0 }
        let count = messages.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_consume_batch_queue(queue, timeoutMilliseconds, buffer.baseAddress, max(1, min(maxMessages, buffer.count)))
        }
        guard count >= 0 else { throw KafkaError(code: rd_kafka_last_error(), topic: topic) }
        var delivered = 0
        for index in 0..<count {
            guard let message = messages[index] else { continue }
            defer { rd_kafka_message_destroy(message) }
            let fields = message.pointee
            if fields.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if fields.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                var fatalText = [CChar](repeating: 0, count: 512)
                if rd_kafka_fatal_error(handle, &fatalText, fatalText.count) != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError(code: fields.err, message: string(fromCBuffer: fatalText), isFatal: true, topic: topic)
                }
                continue  // consumer errors (broker down, ...) are informational: librdkafka retries
            }
            // An earlier rebalance may have released the partition (librdkafka may still hold
            // messages it fetched before) or re-assigned it at another offset (it fetches again
            // from there): hand out only what the current assignment reads next. A partition
            // whose revocation is pending is still this consumer's: its messages are handed out.
            guard context.assigned.contains(fields.partition) else { continue }
            if let floor = context.positions[fields.partition] ?? context.assignedOffsets[fields.partition],
               floor >= 0, fields.offset < floor { continue }
            context.positions[fields.partition] = fields.offset + 1
            let timestamp = rd_kafka_message_timestamp(message, nil)
            body(KafkaMessage(
                partition: fields.partition, offset: fields.offset,
                value: fields.payload.map { UnsafeRawBufferPointer(start: $0, count: fields.len) },
                key: fields.key.map { UnsafeRawBufferPointer(start: $0, count: fields.key_len) },
                timestamp: timestamp >= 0 ? timestamp : nil))
            delivered += 1
        }
        if delivered > 0 { context.brokers.markUp() }  // a fetch came back: a broker answers
        KafkaLogRelay.shared.flushRepeats()
        if let failure = context.fatalError { throw failure }
        return delivered
    }

    /// Commits `offsets` (partition -> next offset) to the group, asynchronously: for lag tools
    /// only; the truth is in PostgreSQL.
    public func commit(_ offsets: [Int32: Int64]) {
        guard !offsets.isEmpty, !isClosed else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in offsets {
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
        }
        rd_kafka_commit(handle, list, 1)
    }

    /// Stops fetching the assigned partitions (backpressure) while `poll` keeps serving the group
    /// protocol, so a long stall downstream does not exceed max.poll.interval.ms. librdkafka
    /// drops what it prefetched for them and, on `resume`, fetches again from the position after
    /// the last message `poll` handed out: nothing is skipped or repeated.
    public func pause() {
        withAssignmentList { rd_kafka_pause_partitions(handle, $0) }
    }

    /// Fetches the assigned partitions again after `pause`.
    public func resume() {
        withAssignmentList { rd_kafka_resume_partitions(handle, $0) }
    }

    /// The partitions currently assigned.
    public var assignment: [Int32] {
        withAssignmentList { list in (0..<Int(list.pointee.cnt)).map { list.pointee.elems[$0].partition }.sorted() } ?? []
    }

    /// Calls `body` with librdkafka's current assignment list (nil when it cannot be read).
    @discardableResult
    private func withAssignmentList<T>(_ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> T) -> T? {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return nil }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return body(list)
    }

    /// Leaves the group. Idempotent. A revocation during the close is completed at once: the
    /// owner has flushed what it holds before closing.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        // librdkafka waits for an announced rebalance to be completed before it can leave.
        if let pending = context.pending, pending.origin == .group {
            if case .assigned = pending.rebalance { try? assign(startingAt: [:]) } else { release() }
        }
        context.isClosing = true
        rd_kafka_consumer_close(handle)
    }
}
