import Foundation
import Kafka
import Pipeline
import Postgres
import TestSupport
import SampleData

/// Keep each partition under about 2.5 MB (5,000 sample events): librdkafka 2.0.2's mock cluster
/// deletes a partition's oldest segments beyond about 5 MB.
///
/// An embedded Kafka cluster with one topic, a migrated database with sample tenants, and a way
/// to run `audit-ingest consume` as a child process against both.
final class KafkaFixture: @unchecked Sendable {  // used by one test at a time
    let cluster: EmbeddedKafkaCluster
    let topic: String
    let partitions: Int
    let database: PipelineDatabase
    let producer: KafkaProducer
    private(set) var produced = 0

    init(partitions: Int = 4, databaseURL: String? = nil) throws {
        TestLogging.bootstrap()
        cluster = try EmbeddedKafkaCluster()
        topic = "audit-\(UUID().uuidString.prefix(8).lowercased())"
        self.partitions = partitions
        try cluster.createTopic(topic, partitions: partitions)
        database = try PipelineDatabase(url: databaseURL)
        producer = try KafkaProducer(configuration: KafkaConfiguration(["bootstrap.servers": cluster.bootstrapServers]))
    }

    /// A fixture whose database is on a PostgreSQL cluster of its own, for tests that stop or
    /// restart the server.
    static func onPrivateCluster(partitions: Int) throws -> (PrivateCluster, KafkaFixture) {
        let postgres = try PrivateCluster()
        try TestDatabase.migrate(postgres.url)
        return (postgres, try KafkaFixture(partitions: partitions, databaseURL: postgres.url))
    }

    /// Produces sample events (and `extra` raw values, nil for a tombstone), spread over
    /// partitions: the fixture's topic's, or `partitions` of `topic`.
    func produce(events: Int, invalidRatio: Double = 0, seed: UInt64 = 42, extra: [[UInt8]?] = [],
                 topic: String? = nil, partitions: Int? = nil) throws {
        let (topic, partitions) = (topic ?? self.topic, partitions ?? self.partitions)
        var index = 0
        for event in SampleEvents(.init(count: events, tenants: 6, months: 3, invalidRatio: invalidRatio, seed: seed, tenantSeed: 42)) {
            try producer.send(topic: topic, partition: Int32(index % partitions), value: Array(SampleEvents.ndjson(event).utf8))
            index += 1
        }
        for value in extra {
            try producer.send(topic: topic, partition: Int32(index % partitions), value: value)
            index += 1
        }
        try producer.flush()
        produced += index
    }

    /// `audit-ingest consume` arguments for this cluster and database; `subscription` replaces
    /// `--topic TOPIC` (several topics, a pattern).
    func consumeArguments(group: String = "tests", exitWhenIdle: Double? = 3, shards: Int = 2, subscription: [String]? = nil) -> [String] {
        var arguments = ["consume", "--brokers", cluster.bootstrapServers] + (subscription ?? ["--topic", topic]) + ["--group", group,
                         "--database-url", database.url, "--shards", "\(shards)", "--batch-size", "500",
                         "--report-interval", "1",
                         // A killed consumer's partitions move after the session timeout: keep it short.
                         "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]
        if let exitWhenIdle { arguments += ["--exit-when-idle", "\(exitWhenIdle)"] }
        return arguments
    }

    func startConsumer(group: String = "tests", exitWhenIdle: Double? = 3, shards: Int = 2) throws -> Shell.Child {
        try Shell.spawn(Shell.executable(named: "audit-ingest"), consumeArguments(group: group, exitWhenIdle: exitWhenIdle, shards: shards))
    }

    /// Waits until audit_log + audit_dead_letter hold at least `count` rows.
    func waitForStored(atLeast count: Int, timeout: TimeInterval = 90) throws -> Bool {
        waitUntil(timeout: .seconds(timeout)) { try database.accounted() >= count }
    }
}

/// A migrated database with the sample tenants.
struct PipelineDatabase {
    let url: String
    let connection: PostgresConnection

    init(url: String? = nil) throws {
        self.url = try url ?? TestDatabase.createMigrated(prefix: "kafka")
        connection = try PostgresConnection(self.url)
        for (index, id) in SampleEvents.tenantIDs(count: 6).enumerated() {
            try connection.query("INSERT INTO tenant (id, name, code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                 [id, "Tenant \(index)", "t-\(index)"])
        }
    }

    func count(_ sql: String) throws -> Int { Int(try connection.execute(sql).scalar ?? "") ?? -1 }

    /// Rows in audit_log plus audit_dead_letter.
    func accounted() throws -> Int {
        try count("SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM audit_dead_letter)")
    }

    /// Every produced message is exactly once in audit_log or audit_dead_letter: the totals match,
    /// no position is dead-lettered twice (unique constraint) and no event was stored twice (which
    /// would show as a 23505 dead letter).
    func exactlyOnce(produced: Int) throws -> Bool {
        try accounted() == produced && count("SELECT count(*) FROM audit_dead_letter WHERE sqlstate = '23505'") == 0
    }
}
