import CRdKafka

/// An error from librdkafka, with what an operator needs to act on it.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// librdkafka's `rd_kafka_resp_err_t` value (negative: client-side, positive: broker).
    public let code: Int32
    /// librdkafka's name for the code, e.g. `_TRANSPORT`, `UNKNOWN_TOPIC_OR_PART`.
    public let name: String
    public let message: String
    /// The client cannot continue (e.g. a fatal idempotence error, or a bad configuration).
    public let isFatal: Bool
    /// The same call may succeed later (broker down, timeouts, transport).
    public let isRetriable: Bool
    public var topic: String?
    public var partition: Int32?

    init(code: rd_kafka_resp_err_t, message: String? = nil, isFatal: Bool = false, topic: String? = nil, partition: Int32? = nil) {
        self.code = code.rawValue
        self.name = String(cString: rd_kafka_err2name(code))
        self.message = message ?? String(cString: rd_kafka_err2str(code))
        self.isFatal = isFatal
        self.isRetriable = !isFatal && Self.transient.contains(code)
        self.topic = topic
        self.partition = partition
    }

    /// A configuration or setup problem reported as text.
    init(configuration message: String) {
        code = RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue
        name = "_INVALID_ARG"
        self.message = message
        isFatal = true
        isRetriable = false
    }

    private static let transient: Set<rd_kafka_resp_err_t> = [
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR__RESOLVE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
    ]

    public var description: String {
        var text = "\(name): \(message)"
        if let topic { text += " (topic \(topic)" + (partition.map { ", partition \($0)" } ?? "") + ")" }
        return text
    }
}

extension rd_kafka_resp_err_t: @retroactive Hashable {}
