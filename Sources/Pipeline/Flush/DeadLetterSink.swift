import CoreMetrics
import Kafka
import Logging
import Postgres

/// Where dead letters also go once their flush transaction has committed them to
/// audit_dead_letter, for stream consumers of bad events. The table stays the record: a process
/// that dies right after a commit may not have handed those dead letters on.
///
/// `publish` is called from flusher threads, concurrently.
package protocol DeadLetterSink: Sendable {
    func publish(_ deadLetters: [DeadLetter], source: String)
    /// Waits until what was published is delivered (at shutdown).
    func flush()
}

/// Publishes dead letters to a Kafka topic, like Kafka Connect's dead-letter queue: the raw
/// message as the value, key `partition:offset`, and headers `audit-ingest-source`,
/// `-partition`, `-offset`, `-reason`, and when known `-detail`, `-sqlstate`, `-tenant`.
/// A failure to publish is logged and counted (`audit_ingest_dead_letter_topic_failures_total`),
/// never fatal.
package final class KafkaDeadLetterTopic: DeadLetterSink {
    package let topic: String
    private let producer: KafkaProducer
    private let logger: Logger
    private let failures: Counter

    package init(topic: String, configuration: KafkaConfiguration, maximumWait: Duration = .seconds(1),
                logger: Logger = Logger(label: "audit-ingest.dead-letter-topic")) throws {
        self.topic = topic
        self.maximumWait = maximumWait
        self.logger = logger
        failures = Counter(label: "audit_ingest_dead_letter_topic_failures_total", dimensions: [("topic", topic)])
        producer = try KafkaProducer(configuration: configuration)
    }

    /// How long one `publish` waits for room in the producer's queue before it gives up on the
    /// rest of its dead letters (it runs on a flusher thread, which must not wait for a broker
    /// that is down). Default: 1 s.
    package let maximumWait: Duration

    package func publish(_ deadLetters: [DeadLetter], source: String) {
        let deadline = ContinuousClock.now + maximumWait
        for (index, deadLetter) in deadLetters.enumerated() {
            guard ContinuousClock.now < deadline || index == 0 else {
                failures.increment(by: deadLetters.count - index)
                logger.warning("dead letters not published: the producer's queue stayed full (they are in audit_dead_letter)", metadata: [
                    LogKey.topic: "\(topic)", LogKey.count: "\(deadLetters.count - index)"])
                break
            }
            var headers = [("audit-ingest-source", source), ("audit-ingest-partition", "\(deadLetter.partition)"),
                           ("audit-ingest-offset", "\(deadLetter.offset)"), ("audit-ingest-reason", deadLetter.reason)]
            if let detail = deadLetter.detail { headers.append(("audit-ingest-detail", detail)) }
            if let sqlState = deadLetter.sqlState { headers.append(("audit-ingest-sqlstate", sqlState)) }
            if let tenant = deadLetter.tenantID { headers.append(("audit-ingest-tenant", tenant.description)) }
            do {
                try producer.send(topic: topic, key: Array("\(deadLetter.partition):\(deadLetter.offset)".utf8),
                                  value: deadLetter.rawMessage, headers: headers,
                                  maximumWait: max(.zero, ContinuousClock.now.duration(to: deadline)))
            } catch {
                failures.increment()
                logger.warning("dead letter not published (it is in audit_dead_letter)", metadata: [
                    LogKey.topic: "\(topic)", LogKey.partition: "\(deadLetter.partition)", LogKey.offset: "\(deadLetter.offset)", LogKey.error: "\(error)"])
            }
        }
        producer.poll()
    }

    package func flush() {
        do { try producer.flush() } catch {
            logger.warning("dead letters may not all have reached their topic", metadata: [LogKey.topic: "\(topic)", LogKey.error: "\(error)"])
        }
    }
}
