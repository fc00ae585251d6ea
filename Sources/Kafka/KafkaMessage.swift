import CRdKafka

/// A change of the partitions a consumer reads, handed to its owner by `poll` (never through a
/// callback): the owner finishes what it must (loads positions, flushes in-flight work) and then
/// completes it with `assign(startingAt:)` or `release()`. Until then `poll` fetches nothing new.
/// Partitions are named by their keys (`KafkaTopics`): with one topic, the partition numbers.
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
    /// The partition key (`KafkaTopics`): the topic and its partition in one number, which the
    /// consumer's rebalances and positions use too.
    public let partitionKey: Int32
    /// The partition within its topic.
    public var partition: Int32 { KafkaTopics.partition(of: partitionKey) }
    public let offset: Int64
    /// nil for a null value (a tombstone).
    public let value: UnsafeRawBufferPointer?
    public let key: UnsafeRawBufferPointer?
    /// The Kafka timestamp (producer's create time or broker's log-append time), milliseconds
    /// since the Unix epoch; nil when the message has none.
    public let timestamp: Int64?
    /// The message librdkafka owns (destroyed by `poll` after the callback): headers and topic
    /// are read from it only when asked for.
    let message: UnsafeMutablePointer<rd_kafka_message_t>

    /// The topic's name.
    public var topic: String { String(cString: rd_kafka_topic_name(message.pointee.rkt)) }

    /// The message's headers in order (a name may repeat); a header with a null value has nil.
    public func headers() -> [(name: String, value: [UInt8]?)] {
        var list: OpaquePointer?
        guard rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        var result: [(name: String, value: [UInt8]?)] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            if let name {
                result.append((String(cString: name), value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
            }
            index += 1
        }
        return result
    }
}
