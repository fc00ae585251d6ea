import CRdKafka

/// Facts about the librdkafka this binary is linked against.
public enum Librdkafka {
    /// The runtime version string, e.g. `2.0.2`.
    public static var version: String { String(cString: rd_kafka_version_str()) }
}
