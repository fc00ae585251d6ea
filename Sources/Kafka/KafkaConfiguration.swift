import CRdKafka
import Foundation

/// librdkafka properties (CONFIGURATION.md), e.g. `bootstrap.servers`, `security.protocol`,
/// `sasl.password`. Values whose names mention a password, secret or key are masked in
/// `description` and logs.
public struct KafkaConfiguration: Sendable, CustomStringConvertible {
    public var properties: [String: String]

    public init(_ properties: [String: String] = [:]) {
        self.properties = properties
    }

    public subscript(name: String) -> String? {
        get { properties[name] }
        set { properties[name] = newValue }
    }

    /// Parses `key=value` pairs (the `-X` flag). A value `@/path` is the content of that file
    /// without its trailing line break (secrets stay out of argv and `ps`); `@@...` is a literal
    /// value starting with `@`. Throws for an entry without `=` or an unreadable file.
    public mutating func apply(_ assignments: [String]) throws {
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                throw KafkaError(configuration: "expected key=value, got \(Self.maskedAssignment(assignment))")
            }
            let key = String(assignment[..<equals])
            let value = assignment[assignment.index(after: equals)...]
            properties[key] = try Self.resolve(key: key, value)
        }
    }

    private static func resolve(key: String, _ value: Substring) throws -> String {
        guard value.hasPrefix("@") else { return String(value) }
        if value.hasPrefix("@@") { return String(value.dropFirst()) }
        let path = String(value.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KafkaError(configuration: "\(key)=@\(path): cannot read the file (missing, or not readable by this user)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    }

    /// True for property names only a consumer reads: group, offset, fetch and queue settings.
    /// librdkafka warns when a producer is given one.
    public static func isConsumerOnly(_ key: String) -> Bool {
        let prefixes = ["group.", "session.timeout.", "heartbeat.", "max.poll.", "auto.offset.", "auto.commit.", "enable.auto.",
                        "enable.partition.eof", "partition.assignment.", "fetch.", "queued.", "isolation.level", "check.crcs",
                        "max.partition.fetch.", "consume."]
        return prefixes.contains { key.hasPrefix($0) }
    }

    /// True for property names whose values must never be shown.
    public static func isSecret(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return ["password", "secret", "key.pem", "private.key", "sasl.oauthbearer.config", "sasl.jaas"]
            .contains { lowered.contains($0) }
    }

    public var description: String {
        properties.sorted { $0.key < $1.key }
            .map { "\($0.key)=\(Self.isSecret($0.key) ? "***" : $0.value)" }
            .joined(separator: " ")
    }

    static func maskedAssignment(_ assignment: String) -> String {
        guard let equals = assignment.firstIndex(of: "=") else { return assignment }
        return isSecret(String(assignment[..<equals])) ? String(assignment[...equals]) + "***" : assignment
    }

    /// Builds an `rd_kafka_conf_t` (owned by the caller until `rd_kafka_new` takes it). The
    /// client's own log lines go to swift-log through `KafkaLogRelay.shared`, not to stderr.
    func makeConf() throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        KafkaLogRelay.install(on: conf)
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            guard rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                let shown = Self.isSecret(name) ? "***" : value
                throw KafkaError(configuration: "\(name)=\(shown): \(string(fromCBuffer: errorText))")
            }
        }
        return conf
    }
}
