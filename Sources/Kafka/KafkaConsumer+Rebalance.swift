import CRdKafka
import Foundation

extension KafkaConsumer {
    /// The rebalance waiting for its owner: `.assigned` until `assign(startingAt:)`, `.revoked`
    /// until `release()`; nil when none is pending.
    public var pendingRebalance: KafkaRebalance? { context.pending?.rebalance }

    /// Completes a pending `.assigned`: starts each partition (by key) at `offsets[key]`, or at the
    /// earliest offset the broker has when absent (an audit pipeline never skips events).
    public func assign(startingAt offsets: [Int32: Int64]) throws {
        guard let pending = context.pending, case .assigned(let partitions) = pending.rebalance else {
            preconditionFailure("assign(startingAt:) without a pending assignment")
        }
        let list = partitionList(partitions) { offsets[$0] ?? Int64(RD_KAFKA_OFFSET_BEGINNING) }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions {
            context.assignedOffsets[partition] = offsets[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
            context.positions[partition] = nil
        }
        context.assigned.formUnion(partitions)
        context.pending = nil
        if case .staticAssignment = pending.origin {
            let error = rd_kafka_assign(handle, list)
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: error, topic: subscription.description) }
        } else {
            context.complete(.assigned(partitions), list: list, on: handle)
        }
    }

    /// Completes a pending `.revoked` or `.lost`: the partitions go back to the group.
    public func release() {
        guard let pending = context.pending, let partitions = pending.rebalance.revokedPartitions else {
            preconditionFailure("release() without a pending revocation")
        }
        context.pending = nil
        context.assigned.subtract(partitions)
        let list = partitionList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        context.complete(.revoked(partitions), list: list, on: handle)
    }
}

/// Handed to librdkafka as the client's opaque pointer; lives as long as the consumer. Used only
/// on the polling thread (librdkafka calls back from inside `poll` and `close`).
final class RebalanceContext {
    struct Pending {
        enum Origin { case group, staticAssignment }
        var rebalance: KafkaRebalance
        var origin: Origin

        static func staticAssignment(_ partitions: [Int32]) -> Pending { Pending(rebalance: .assigned(partitions), origin: .staticAssignment) }
    }

    let topics: KafkaTopics
    /// Written by librdkafka's error callback (see KafkaConsumer+Brokers.swift): atomics only.
    let brokers = BrokerState()
    var fatalError: KafkaError?
    /// The rebalance librdkafka announced and the owner has not completed yet.
    var pending: Pending?
    /// Set by `close()`: a revocation then completes inside the callback.
    var isClosing = false
    /// Where each partition was assigned (negative: a logical offset such as BEGINNING).
    var assignedOffsets: [Int32: Int64] = [:]
    /// Per partition, the offset after the last message handed out.
    var positions: [Int32: Int64] = [:]
    /// The partitions assigned now: messages of others (fetched before a release) are dropped.
    var assigned: Set<Int32> = []

    /// Whether the group's protocol is COOPERATIVE (incremental assign and unassign), from the
    /// configured assignors. Not asked of `rd_kafka_rebalance_protocol`: librdkafka 2.0.2 answers
    /// that on the group's queue, which during `rd_kafka_consumer_close` is served by the very
    /// thread waiting in this callback, and the close hangs for good (seen in RevocationTests).
    let cooperative: Bool

    init(topics: KafkaTopics, assignmentStrategy: String?) {
        self.topics = topics
        cooperative = Self.isCooperative(assignmentStrategy)
    }

    /// librdkafka refuses assignors of both protocols together; only `cooperative-sticky` is
    /// cooperative, and the default ("range,roundrobin") is eager.
    static func isCooperative(_ assignmentStrategy: String?) -> Bool {
        (assignmentStrategy ?? "range,roundrobin").split(separator: ",")
            .contains { $0.trimmingCharacters(in: .whitespaces) == "cooperative-sticky" }
    }

    /// Tells librdkafka the owner is done with a group rebalance: (incrementally) assigns or
    /// unassigns `list`. librdkafka waits for this call, so a failure is fatal (`poll` throws it)
    /// rather than left to hang the group or `close()`.
    func complete(_ rebalance: KafkaRebalance, list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
                  on handle: OpaquePointer) {
        var failure: (code: rd_kafka_resp_err_t, message: String)?
        if cooperative {
            let error = rebalance.revokedPartitions == nil
                ? rd_kafka_incremental_assign(handle, list) : rd_kafka_incremental_unassign(handle, list)
            if let error {
                failure = (rd_kafka_error_code(error), String(cString: rd_kafka_error_string(error)))
                rd_kafka_error_destroy(error)
            }
        } else {
            let code = rd_kafka_assign(handle, rebalance.revokedPartitions == nil ? list : nil)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR { failure = (code, String(cString: rd_kafka_err2str(code))) }
        }
        if let failure, fatalError == nil {
            fatalError = KafkaError(code: failure.code, message: "completing a rebalance failed: \(failure.message)", isFatal: true)
        }
    }
}

/// librdkafka calls this on the polling thread, inside `rd_kafka_consume_batch_queue` or
/// `rd_kafka_consumer_close`. It only records the change: the owner completes it after `poll`
/// returns (librdkafka waits for that), so no engine work runs inside librdkafka.
func rebalanceCallback(_ handle: OpaquePointer?, _ error: rd_kafka_resp_err_t,
                       _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                       _ opaque: UnsafeMutableRawPointer?) {
    guard let handle, let list, let opaque else { return }
    let context = Unmanaged<RebalanceContext>.fromOpaque(opaque).takeUnretainedValue()
    let keys = (0..<Int(list.pointee.cnt)).map { index in
        let element = list.pointee.elems[index]
        return context.topics.key(topic: String(cString: element.topic), partition: element.partition)
    }
    let partitions = keys.compactMap { $0 }
    var error = error
    if partitions.count < keys.count, context.fatalError == nil {
        context.fatalError = KafkaError(configuration: """
            more topics (\(KafkaTopics.maximumCount)) or partitions per topic (2^20) than one consumer reads: narrow the pattern
            """)
        error = RD_KAFKA_RESP_ERR__INVALID_ARG
    }
    switch error {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS where !context.isClosing && context.pending == nil:
        context.pending = .init(rebalance: .assigned(partitions), origin: .group)
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS where !context.isClosing && context.pending == nil:
        // Lost (session timeout, max.poll.interval.ms): another member may own them already.
        let lost = rd_kafka_assignment_lost(handle) != 0
        context.pending = .init(rebalance: lost ? .lost(partitions) : .revoked(partitions), origin: .group)
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS where context.isClosing, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS where context.isClosing:
        // Closing: the owner has flushed what it holds; give everything back now.
        context.assigned = []
        context.pending = nil
        context.complete(.revoked(partitions), list: list, on: handle)
    default:
        // An error, or a second rebalance before the owner completed the first (librdkafka
        // does not do that): stop consuming rather than guess.
        if context.fatalError == nil {
            context.fatalError = context.pending == nil
                ? KafkaError(code: error)
                : KafkaError(code: error, message: "a rebalance arrived before the previous one was completed", isFatal: true)
        }
        context.assigned = []
        context.pending = nil
        context.complete(.revoked(partitions), list: list, on: handle)
    }
    // Return from the batch call now: the owner has work to do before fetching goes on.
    rd_kafka_yield(handle)
}
