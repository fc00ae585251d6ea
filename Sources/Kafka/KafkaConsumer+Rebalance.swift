import CRdKafka

extension KafkaConsumer {
    /// The rebalance waiting for its owner: `.assigned` until `assign(startingAt:)`, `.revoked`
    /// until `release()`; nil when none is pending.
    public var pendingRebalance: KafkaRebalance? { context.pending?.rebalance }

    /// Completes a pending `.assigned`: starts each partition at `offsets[partition]`, or at the
    /// earliest offset the broker has when absent (an audit pipeline never skips events).
    public func assign(startingAt offsets: [Int32: Int64]) throws {
        guard let pending = context.pending, case .assigned(let partitions) = pending.rebalance else {
            preconditionFailure("assign(startingAt:) without a pending assignment")
        }
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions {
            let offset = offsets[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
            context.assignedOffsets[partition] = offset
            context.positions[partition] = nil
        }
        context.assigned.formUnion(partitions)
        context.pending = nil
        if case .staticAssignment = pending.origin {
            let error = rd_kafka_assign(handle, list)
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: error, topic: topic) }
        } else {
            context.complete(.assigned(partitions), list: list, on: handle)
        }
    }

    /// Completes a pending `.revoked`: the partitions go back to the group.
    public func release() {
        guard let pending = context.pending, case .revoked(let partitions) = pending.rebalance else {
            preconditionFailure("release() without a pending revocation")
        }
        context.pending = nil
        context.assigned.subtract(partitions)
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, topic, partition) }
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

    let topic: String
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

    init(topic: String) {
        self.topic = topic
    }

    /// Tells librdkafka the owner is done with a group rebalance: (incrementally) assigns or
    /// unassigns `list`.
    func complete(_ rebalance: KafkaRebalance, list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
                  on handle: OpaquePointer) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        switch (rebalance, cooperative) {
        case (.assigned, true):
            if let failure = rd_kafka_incremental_assign(handle, list) { rd_kafka_error_destroy(failure) }
        case (.assigned, false):
            rd_kafka_assign(handle, list)
        case (.revoked, true):
            if let failure = rd_kafka_incremental_unassign(handle, list) { rd_kafka_error_destroy(failure) }
        case (.revoked, false):
            rd_kafka_assign(handle, nil)
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
    let partitions = (0..<Int(list.pointee.cnt)).map { list.pointee.elems[$0].partition }
    switch error {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS where !context.isClosing:
        context.pending = .init(rebalance: .assigned(partitions), origin: .group)
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS where !context.isClosing:
        context.pending = .init(rebalance: .revoked(partitions), origin: .group)
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        // Closing: the owner has flushed what it holds; give everything back now.
        context.assigned = []
        context.pending = nil
        context.complete(.revoked(partitions), list: list, on: handle)
    default:
        context.fatalError = KafkaError(code: error, topic: context.topic)
        context.assigned = []
        context.pending = nil
        rd_kafka_assign(handle, nil)
    }
}
