import CRdKafka
import Synchronization

/// A producer, for the demo, the benchmark and tests. Messages are copied by librdkafka.
///
/// Thread-safe as librdkafka's producer is. `@unchecked Sendable`: `handle` and the topic
/// handles are owned by this object and freed in `deinit` after a flush.
public final class KafkaProducer: @unchecked Sendable {
    private let handle: OpaquePointer
    /// One `rd_kafka_topic_t` per topic name, created on first use.
    private let topics = Mutex<[String: OpaquePointer]>([:])

    public init(configuration: KafkaConfiguration) throws {
        var configuration = configuration
        if configuration["linger.ms"] == nil { configuration["linger.ms"] = "5" }
        let conf = try configuration.makeConf()
        rd_kafka_conf_set_dr_msg_cb(conf, confirmedDeliveryReport)
        var errorText = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(configuration: string(fromCBuffer: errorText))
        }
        self.handle = handle
    }

    deinit {
        rd_kafka_flush(handle, 10_000)
        topics.withLock { $0.values.forEach { rd_kafka_topic_destroy($0) } }
        rd_kafka_destroy(handle)
    }

    var rawHandle: OpaquePointer { handle }

    private func topicHandle(_ name: String) throws -> OpaquePointer {
        try topics.withLock { topics in
            if let existing = topics[name] { return existing }
            guard let created = rd_kafka_topic_new(handle, name, nil) else {
                throw KafkaError(code: rd_kafka_last_error(), topic: name)
            }
            topics[name] = created
            return created
        }
    }

    /// Queues a message. `value` nil produces a null value (a tombstone). `partition` nil lets
    /// the partitioner choose (by key when there is one). Waits while the local queue is full.
    public func send(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?) throws {
        let topicHandle = try topicHandle(topic)
        while true {
            let status: Int32 = withOptionalBytes(key) { keyPointer, keyCount in
                withOptionalBytes(value) { valuePointer, valueCount in
                    rd_kafka_produce(topicHandle, partition ?? RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                     valuePointer, valueCount, keyPointer, keyCount, nil)
                }
            }
            if status == 0 { return }
            let error = rd_kafka_last_error()
            if error == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_poll(handle, 50)
                continue
            }
            throw KafkaError(code: error, topic: topic, partition: partition)
        }
    }

    /// Queues a message with headers (name, value) to the partition its key picks. Waits while
    /// the local queue is full, at most `maximumWait` when given (then throws the queue-full error).
    public func send(topic: String, key: [UInt8], value: [UInt8], headers: [(String, String)],
                     maximumWait: Duration? = nil) throws {
        let deadline = maximumWait.map { ContinuousClock.now + $0 }
        while true {
            let list = Self.headerList(headers)
            let error = withOptionalBytes(key) { keyPointer, keyCount in
                withOptionalBytes(value) { valuePointer, valueCount in
                    audit_ingest_produce_with_headers(handle, topic, keyPointer, keyCount, valuePointer, valueCount, list)
                }
            }
            if error == RD_KAFKA_RESP_ERR_NO_ERROR { return }  // librdkafka owns the headers now
            rd_kafka_headers_destroy(list)
            guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw KafkaError(code: error, topic: topic) }
            if let deadline, ContinuousClock.now >= deadline { throw KafkaError(code: error, topic: topic) }
            rd_kafka_poll(handle, 50)
        }
    }

    /// A new librdkafka header list (the caller owns it until a produce call takes it).
    static func headerList(_ headers: [(String, String)]) -> OpaquePointer {
        let list = rd_kafka_headers_new(headers.count)!
        for (name, value) in headers {
            _ = value.utf8CString.withUnsafeBufferPointer { bytes in
                rd_kafka_header_add(list, name, -1, bytes.baseAddress, bytes.count - 1)
            }
        }
        return list
    }

    /// Waits until every queued message is delivered (or `timeoutMilliseconds` passes).
    public func flush(timeoutMilliseconds: Int32 = 30_000) throws {
        let error = rd_kafka_flush(handle, timeoutMilliseconds)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: error) }
    }

    /// The error that made the producer unusable (idempotence lost), if one did: make a new one.
    public var fatalError: KafkaError? {
        var text = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &text, text.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: code, message: string(fromCBuffer: text), isFatal: true)
    }

    /// Serves delivery reports and other callbacks.
    public func poll() { rd_kafka_poll(handle, 0) }
}

/// librdkafka takes payloads as `void *` but, with RD_KAFKA_MSG_F_COPY, only reads them: no copy.
private func withOptionalBytes<T>(_ bytes: [UInt8]?, _ body: (UnsafeMutableRawPointer?, Int) -> T) -> T {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { body(UnsafeMutableRawPointer(mutating: $0.baseAddress), $0.count) }
}
