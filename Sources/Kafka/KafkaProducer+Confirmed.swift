import CRdKafka
import Synchronization

/// One message of a confirmed batch.
public struct OutgoingMessage: Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    public var headers: [(String, String)]

    public init(key: [UInt8], value: [UInt8], headers: [(String, String)] = []) {
        self.key = key
        self.value = value
        self.headers = headers
    }
}

extension KafkaProducer {
    /// Queues `messages` in order and waits until the brokers acknowledged every one (acks as
    /// configured; `enable.idempotence=true` keeps a key's messages in order through retries).
    /// Throws the first failed message's error, or a timeout naming how many were not
    /// acknowledged within `timeout`: the caller sends the whole batch again (at least once).
    /// Blocking: call it off the cooperative pool, one batch at a time per producer.
    public func sendConfirmed(topic: String, _ messages: [OutgoingMessage], timeout: Duration) throws {
        let deadline = ContinuousClock.now + timeout
        let tally = DeliveryTally(pending: messages.count)
        for message in messages {
            try queue(topic: topic, message, tally: tally, deadline: deadline)
        }
        while tally.pending > 0 && ContinuousClock.now < deadline {
            rd_kafka_poll(rawHandle, 50)
        }
        if let failure = tally.firstFailure { throw KafkaError(code: failure, topic: topic) }
        let unconfirmed = tally.pending
        guard unconfirmed == 0 else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT,
                             message: "\(unconfirmed) of \(messages.count) messages not acknowledged within \(timeout)", topic: topic)
        }
    }

    private func queue(topic: String, _ message: OutgoingMessage, tally: DeliveryTally, deadline: ContinuousClock.Instant) throws {
        while true {
            let list = Self.headerList(message.headers)
            // One reference per queued message, released by its delivery report.
            let opaque = Unmanaged.passRetained(tally).toOpaque()
            let error = message.key.withUnsafeBytes { key in
                message.value.withUnsafeBytes { value in
                    audit_ingest_produce_with_opaque(rawHandle, topic, key.baseAddress, key.count,
                                                     UnsafeMutableRawPointer(mutating: value.baseAddress), value.count, list, opaque)
                }
            }
            if error == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            Unmanaged<DeliveryTally>.fromOpaque(opaque).release()
            rd_kafka_headers_destroy(list)
            guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL, ContinuousClock.now < deadline else {
                throw KafkaError(code: error, topic: topic)
            }
            rd_kafka_poll(rawHandle, 50)
        }
    }
}

/// What the delivery reports of one batch said.
final class DeliveryTally: Sendable {
    private let state: Mutex<(pending: Int, firstFailure: rd_kafka_resp_err_t?)>

    init(pending: Int) { state = Mutex((pending, nil)) }

    var pending: Int { state.withLock { $0.pending } }
    var firstFailure: rd_kafka_resp_err_t? { state.withLock { $0.firstFailure } }

    func report(_ error: rd_kafka_resp_err_t) {
        state.withLock {
            $0.pending -= 1
            if error != RD_KAFKA_RESP_ERR_NO_ERROR && $0.firstFailure == nil { $0.firstFailure = error }
        }
    }
}

/// Every producer's delivery report callback: messages queued by `sendConfirmed` carry their
/// batch's tally; others (no opaque) are not followed.
let confirmedDeliveryReport: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    Unmanaged<DeliveryTally>.fromOpaque(opaque).takeRetainedValue().report(message.pointee.err)
}
