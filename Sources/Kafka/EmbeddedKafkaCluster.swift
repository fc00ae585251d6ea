import CRdKafka

/// A Kafka cluster inside this process: librdkafka's mock cluster (`rdkafka_mock.h`), which speaks
/// the real protocol (consumer groups included) on localhost TCP ports.
///
/// Note (librdkafka 2.0.2): it keeps only about 5 MB or 100,000 messages per partition and
/// deletes older segments, so spread large backlogs over partitions or produce while consuming.
///
/// `@unchecked Sendable`: the mock cluster runs on librdkafka's own threads; `cluster` and its
/// host client `host` are owned here and destroyed in `deinit`.
public final class EmbeddedKafkaCluster: @unchecked Sendable {
    private let host: OpaquePointer
    private let cluster: OpaquePointer
    /// `127.0.0.1:port,...`: give this to clients as `bootstrap.servers`.
    public let bootstrapServers: String
    public let brokerCount: Int

    public init(brokers: Int = 1) throws {
        let conf = rd_kafka_conf_new()!
        var errorText = [CChar](repeating: 0, count: 512)
        rd_kafka_conf_set(conf, "log_level", "3", &errorText, errorText.count)
        KafkaLogRelay.install(on: conf)
        guard let host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(configuration: "cannot create the mock cluster's client: \(string(fromCBuffer: errorText))")
        }
        guard let cluster = rd_kafka_mock_cluster_new(host, Int32(brokers)) else {
            rd_kafka_destroy(host)
            throw KafkaError(configuration: "cannot start the embedded Kafka cluster")
        }
        self.host = host
        self.cluster = cluster
        self.brokerCount = brokers
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(host)
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1).
    public func createTopic(_ topic: String, partitions: Int) throws {
        let error = rd_kafka_mock_topic_create(cluster, topic, Int32(partitions), 1)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: error, topic: topic) }
    }

    /// Takes a broker down (connections refused) or brings it back. Broker ids start at 1.
    public func setBroker(_ id: Int32, up: Bool) throws {
        let error = up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: error) }
    }
}
