import Foundation
import Kafka
import Pipeline
import TestSupport
import Testing

/// `consume --topic A --topic B`, `--topic-pattern` and `--instance-id`: each topic's positions
/// under its own source, so adding a topic keeps what a topic stored alone, and exactly once
/// across restarts for all of them.
@Suite(.serialized, .timeLimit(.minutes(6))) struct TopicSubscriptionTests {
    func consume(_ fixture: KafkaFixture, _ subscription: [String], extra: [String] = [], exitWhenIdle: Double? = 3) throws -> Shell.Child {
        try Shell.spawn(Shell.executable(named: "audit-ingest"),
                        fixture.consumeArguments(exitWhenIdle: exitWhenIdle, subscription: subscription) + extra)
    }

    /// Per source, the sum of the positions over shards (2) and partitions: messages stored.
    func storedPositions(_ fixture: KafkaFixture) throws -> [String: Int] {
        let rows = try fixture.database.connection.execute("""
            SELECT source, (sum(next_offset) / 2)::bigint, count(DISTINCT "partition") FROM ingest_offsets GROUP BY 1 ORDER BY 1
            """).rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] ?? "", Int($0[1] ?? "") ?? -1) })
    }

    @Test func aTopicAddedToARunKeepsItsPositionsAndARestartContinuesEveryTopic() throws {
        let fixture = try KafkaFixture(partitions: 3)
        let second = "second-\(fixture.topic)"
        try fixture.cluster.createTopic(second, partitions: 2)
        try fixture.produce(events: 1500)
        // Alone first, as a deployment before this option.
        let alone = try consume(fixture, ["--topic", fixture.topic]).wait()
        #expect(alone.exitCode == 0, "\(alone.output)")
        #expect(try storedPositions(fixture) == ["kafka:tests:\(fixture.topic)": 1500])

        // Then with a second topic: the first continues where it stopped.
        try fixture.produce(events: 300, seed: 7)
        try fixture.produce(events: 1000, seed: 9, extra: [Array("not json".utf8)], topic: second, partitions: 2)
        let both = ["--topic", fixture.topic, "--topic", second]
        let first = try consume(fixture, both).wait()
        #expect(first.exitCode == 0, "\(first.output)")
        #expect(first.output.contains("stored              1300"), "\(first.output)")
        #expect(try storedPositions(fixture) == ["kafka:tests:\(fixture.topic)": 1800, "kafka:tests:\(second)": 1001])
        #expect(try fixture.database.count("""
            SELECT count(*) FROM audit_dead_letter WHERE source = 'kafka:tests:\(second)' AND raw_payload = 'not json'::bytea
            """) == 1)
        #expect(try fixture.database.count(#"SELECT count(DISTINCT "partition") FROM ingest_offsets WHERE source LIKE 'kafka:tests:second-%'"#) == 2)

        // A restart reads only what arrived since, of both topics.
        try fixture.produce(events: 200, seed: 11)
        try fixture.produce(events: 100, seed: 13, topic: second, partitions: 2)
        let again = try consume(fixture, both).wait()
        #expect(again.exitCode == 0, "\(again.output)")
        #expect(again.output.contains("stored              300"), "\(again.output)")
        #expect(try fixture.database.exactlyOnce(produced: 1500 + 300 + 1001 + 200 + 100))
    }

    @Test func aPatternSubscriptionReadsTheTopicsItMatchesAndOnesCreatedLater() throws {
        let fixture = try KafkaFixture(partitions: 2)
        let prefix = "pattern-\(fixture.topic)"
        for (name, seed) in [("\(prefix)-a", 5), ("\(prefix)-b", 15)] as [(String, UInt64)] {
            try fixture.cluster.createTopic(name, partitions: 2)
            try fixture.produce(events: 400, seed: seed, topic: name, partitions: 2)
        }
        try fixture.produce(events: 100)  // the fixture's own topic does not match
        let admin = try AdminPort()
        let consumer = try consume(fixture, ["--topic-pattern", "\(prefix)-.*"],
                                   extra: ["-X", "topic.metadata.refresh.interval.ms=1000"] + admin.arguments, exitWhenIdle: nil)
        #expect(try fixture.waitForStored(atLeast: 800))
        try fixture.cluster.createTopic("\(prefix)-c", partitions: 1)
        try fixture.produce(events: 250, seed: 6, topic: "\(prefix)-c", partitions: 1)
        #expect(try fixture.waitForStored(atLeast: 1050, timeout: 60))
        // Lag is labelled with each topic's own source and partition.
        let lag = admin.waitFor("/metrics", timeout: 20) { reply in
            reply.body.split(separator: "\n").contains {
                $0.hasPrefix("audit_ingest_consumer_lag{") && $0.contains(#"partition="0""#) && $0.contains(#"source="kafka:tests:\#(prefix)-c""#)
            }
        }
        #expect(lag != nil, "\(admin.get("/metrics")?.body ?? "")")
        consumer.signal(SIGTERM)
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try storedPositions(fixture) == ["kafka:tests:\(prefix)-a": 400, "kafka:tests:\(prefix)-b": 400, "kafka:tests:\(prefix)-c": 250])
        #expect(try fixture.database.exactlyOnce(produced: 1050))
    }

    /// The mock cluster of librdkafka 2.0.2 ignores group.instance.id (a restart waits for the
    /// session timeout either way), so what is checked is that the id reaches the consumer and
    /// that it is refused where it means nothing.
    @Test func anInstanceIdMakesAStaticMemberAndIsRefusedWithStaticPartitions() throws {
        let fixture = try KafkaFixture(partitions: 2)
        try fixture.produce(events: 500)
        let member = try consume(fixture, ["--topic", fixture.topic], extra: ["--instance-id", "ingest-1"]).wait()
        #expect(member.exitCode == 0, "\(member.output)")
        #expect(member.output.contains("group.instance.id=ingest-1"), "\(member.output)")
        #expect(try fixture.database.exactlyOnce(produced: 500))
        let refused = try consume(fixture, ["--topic", fixture.topic], extra: ["--instance-id", "ingest-1", "--partitions", "all"]).wait()
        #expect(refused.exitCode == 64 && refused.output.contains("--instance-id is a group member's id"), "\(refused.output)")
        let pattern = try consume(fixture, ["--topic-pattern", "audit-.*"], extra: ["--partitions", "0"]).wait()
        #expect(pattern.exitCode == 64 && pattern.output.contains("--partitions needs topics by name"), "\(pattern.output)")
    }

    @Test func aSubscriptionIsRequiredAndTopicsAndAPatternExcludeEachOther() throws {
        let binary = Shell.executable(named: "audit-ingest")
        for (arguments, message) in [
            ([], "give --topic NAME (repeatable) or --topic-pattern REGEX"),
            (["--topic", "a", "--topic-pattern", "b.*"], "--topic and --topic-pattern exclude each other"),
            (["--topic", "a", "--topic", "a"], "--topic names a topic twice"),
        ] {
            let run = try Shell.run(binary, ["consume", "--brokers", "127.0.0.1:1"] + arguments)
            #expect(run.exitCode == 64 && run.output.contains(message), "\(arguments): \(run.output)")
        }
    }

    @Test func staticPartitionsOfSeveralTopicsAreReadPerTopic() throws {
        let fixture = try KafkaFixture(partitions: 2)
        let second = "second-\(fixture.topic)"
        try fixture.cluster.createTopic(second, partitions: 2)
        try fixture.produce(events: 400)
        try fixture.produce(events: 600, seed: 3, topic: second, partitions: 2)
        let run = try consume(fixture, ["--topic", fixture.topic, "--topic", second], extra: ["--partitions", "1"], exitWhenIdle: 2).wait()
        #expect(run.exitCode == 0, "\(run.output)")
        #expect(try storedPositions(fixture) == ["kafka:tests:\(fixture.topic)": 200, "kafka:tests:\(second)": 300])
    }
}
