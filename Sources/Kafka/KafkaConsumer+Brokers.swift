import CRdKafka
import Synchronization

extension KafkaConsumer {
    /// True from librdkafka's "all broker connections are down" error until a broker answers
    /// again (a fetch delivers a message, or `checkBrokersIfDown` gets metadata).
    public var brokersDown: Bool { context.brokers.isDown }

    /// While `brokersDown`, asks a broker for the cluster's metadata, waiting up to
    /// `timeoutMilliseconds`; an answer clears `brokersDown`. Does nothing while brokers are up.
    /// Call it from the polling thread now and then: an idle topic delivers no message that
    /// would show the brokers are back.
    public func checkBrokersIfDown(timeoutMilliseconds: Int32 = 500) {
        guard brokersDown else { return }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, nil, &metadata, timeoutMilliseconds)  // brokers and known topics only
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        if error == RD_KAFKA_RESP_ERR_NO_ERROR { context.brokers.markUp() }
    }

    /// Sets the error callback on `conf`: client-wide errors (a broker's transport, all brokers
    /// down) are logged through `KafkaLogRelay` as librdkafka would have printed them, and
    /// "all brokers down" is recorded in `context.brokers`. The conf's opaque must be a
    /// `RebalanceContext`.
    static func installErrorCallback(on conf: OpaquePointer) {
        rd_kafka_conf_set_error_cb(conf, consumerErrorCallback)
    }
}

/// Whether every broker connection is down; Sendable through its atomic alone. Written by
/// librdkafka's error callback and the polling thread, read by anyone.
final class BrokerState: Sendable {
    private let down = Atomic<Bool>(false)

    var isDown: Bool { down.load(ordering: .relaxed) }  // a status flag: no other memory depends on it

    func markDown() { down.store(true, ordering: .relaxed) }

    func markUp() {
        if isDown { down.store(false, ordering: .relaxed) }  // load first: no store (cache-line traffic) per fetch
    }
}

/// librdkafka calls this with client-wide errors. With `rd_kafka_poll_set_consumer` they are
/// served from the consumer queue, i.e. on the polling thread inside `poll`, but only
/// `context.brokers` (atomics) and the relay (a mutex) are touched, so any thread would do.
/// `opaque` is the consumer's `RebalanceContext`, unretained; it outlives the handle.
private func consumerErrorCallback(_ handle: OpaquePointer?, _ code: Int32, _ reason: UnsafePointer<CChar>?,
                                   _ opaque: UnsafeMutableRawPointer?) {
    let error = rd_kafka_resp_err_t(rawValue: code)
    if error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, let opaque {
        Unmanaged<RebalanceContext>.fromOpaque(opaque).takeUnretainedValue().brokers.markDown()
    }
    let client = handle.map { String(cString: rd_kafka_name($0)) } ?? "rdkafka"
    let text = "\(String(cString: rd_kafka_err2str(error))): \(reason.map { String(cString: $0) } ?? "")"
    KafkaLogRelay.shared.log(level: 3, facility: "ERROR", client: client, message: text)
}
