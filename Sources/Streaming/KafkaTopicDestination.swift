import Foundation
import Kafka

/// A Kafka topic destination, `kafka://HOST:PORT[,HOST:PORT...]/TOPIC`: each event one message
/// with the tenant id as its key (a tenant's events share a partition, so a consumer reads them
/// in feed order), the event's JSON as its value, and the headers `audit-ingest-event-id` and
/// `audit-ingest-destination`. The producer is idempotent (acks from all in-sync replicas, and
/// no reordering or duplicates through its own retries); a batch counts as delivered once every
/// message of it was acknowledged.
///
/// The destination's secret reference, when it has one, holds librdkafka properties, one
/// `name=value` per line (`security.protocol`, `sasl.*`, `ssl.*`, `message.timeout.ms`, ...),
/// read at each round like any secret: a rotated file takes effect with a new producer.
public struct KafkaTopicDestination: Equatable, Sendable {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public let brokers: String
    public let topic: String

    public init(url: String) throws(Invalid) {
        let form = "a Kafka destination's url is kafka://HOST:PORT[,HOST:PORT...]/TOPIC"
        guard url.hasPrefix("kafka://") else { throw Invalid(description: form) }
        let rest = url.dropFirst("kafka://".count)
        guard let slash = rest.firstIndex(of: "/") else { throw Invalid(description: form) }
        let brokers = rest[..<slash], topic = rest[rest.index(after: slash)...]
        let brokerPattern = #"^[A-Za-z0-9.\[\]:-]+:[0-9]{1,5}$"#
        guard !brokers.isEmpty,
              brokers.split(separator: ",", omittingEmptySubsequences: false)
                  .allSatisfy({ $0.range(of: brokerPattern, options: .regularExpression) != nil }) else {
            throw Invalid(description: "\(form): each broker is HOST:PORT")
        }
        guard topic.range(of: #"^[A-Za-z0-9._-]{1,249}$"#, options: .regularExpression) != nil else {
            throw Invalid(description: "\(form): a topic is 1-249 letters, digits, '.', '_' or '-'")
        }
        self.brokers = String(brokers)
        self.topic = String(topic)
    }

    /// Properties the destination sets itself: the URL names the brokers, and per-tenant order
    /// needs the idempotent producer.
    static let fixed: Set = ["bootstrap.servers", "enable.idempotence"]

    /// The producer's configuration: the secret's properties over our defaults.
    func configuration(secret: [UInt8]?) throws(Invalid) -> KafkaConfiguration {
        var configuration = KafkaConfiguration([
            "bootstrap.servers": brokers, "enable.idempotence": "true", "client.id": "audit-ingest-stream",
            "linger.ms": "5", "message.timeout.ms": "30000",
        ])
        let text = secret.map { String(decoding: $0, as: UTF8.self) } ?? ""
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            // Never the line itself in a message: it may hold a password.
            guard let equals = line.firstIndex(of: "="), equals != line.startIndex else {
                throw Invalid(description: "the Kafka properties (the destination's secret), line \(number + 1): expected name=value")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard !Self.fixed.contains(name) else {
                throw Invalid(description: "the Kafka properties may not set \(name): the destination sets it")
            }
            configuration[name] = String(line[line.index(after: equals)...])
        }
        return configuration
    }

    /// How long a batch may wait for its acknowledgements: librdkafka gives up on a message
    /// after `message.timeout.ms`, and the wait a little later.
    static func confirmationTimeout(_ configuration: KafkaConfiguration) -> Duration {
        .milliseconds(Int(configuration["message.timeout.ms"] ?? "") ?? 30_000) + .seconds(5)
    }

    static func messages(of events: [String], tenant: String, destination: String) -> [OutgoingMessage] {
        events.map { event in
            OutgoingMessage(key: Array(tenant.utf8), value: Array(event.utf8),
                            headers: [("audit-ingest-event-id", eventID(event)), ("audit-ingest-destination", destination)])
        }
    }

    /// The event's `id` (the read API's JSON writes it first).
    static func eventID(_ event: String) -> String {
        guard let start = event.range(of: #""id":""#)?.upperBound, let end = event[start...].firstIndex(of: "\"") else { return "" }
        return String(event[start..<end])
    }
}

/// A destination worker's producer, made again when the destination's properties change.
final class KafkaTopicSender: @unchecked Sendable {  // used by its destination's worker only, one call at a time
    private var producer: KafkaProducer?
    /// What `producer` was made with (the brokers among them).
    private var properties: [String: String]?

    /// Sends `events` and waits for every acknowledgement.
    func send(_ events: [String], tenant: String, to destination: StreamDestination, secret: [UInt8]?) throws {
        let target = try KafkaTopicDestination(url: destination.url)
        let configuration = try target.configuration(secret: secret)
        if properties != configuration.properties {
            producer = nil  // its deinit flushes what it still holds
            producer = try KafkaProducer(configuration: configuration)
            properties = configuration.properties
        }
        do {
            try producer!.sendConfirmed(topic: target.topic,
                                        KafkaTopicDestination.messages(of: events, tenant: tenant, destination: destination.name),
                                        timeout: KafkaTopicDestination.confirmationTimeout(configuration))
        } catch {
            if let fatal = producer?.fatalError {
                producer = nil
                properties = nil
                throw fatal
            }
            throw error
        }
    }
}
