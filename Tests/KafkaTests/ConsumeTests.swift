import Foundation
import Kafka
import Pipeline
import Postgres
import TestSupport
import Testing
import SampleData

@Suite(.serialized, .timeLimit(.minutes(10))) struct ConsumeTests {
    @Test func eventsProducedByKcatAreStoredExactly() throws {
        let fixture = try KafkaFixture(partitions: 3)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kcat-\(UUID()).ndjson").path
        var text = ""
        for event in SampleEvents(.init(count: 3000, tenants: 6)) { text += SampleEvents.ndjson(event) + "\n" }
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        let kcat = try Shell.run("/usr/bin/kcat", ["-P", "-b", fixture.cluster.bootstrapServers, "-t", fixture.topic, "-l", file])
        #expect(kcat.exitCode == 0, "\(kcat.output)")

        let consumer = try fixture.startConsumer().wait()
        #expect(consumer.exitCode == 0, "\(consumer.output)")
        #expect(consumer.output.contains("stored              3000"))
        #expect(try fixture.database.count("SELECT count(*) FROM audit_log") == 3000)
        #expect(try fixture.database.exactlyOnce(produced: 3000))
        // The stored positions reach each partition's end.
        let offsets = try fixture.database.connection.execute(#"SELECT "partition", shard, next_offset FROM ingest_offsets ORDER BY 1, 2"#).rows
        #expect(try fixture.database.count("SELECT (sum(next_offset) / 2)::bigint FROM ingest_offsets") == 3000, "\(offsets)")
    }

    @Test func badMessagesNullValuesAndTombstonesAreDeadLetteredWithoutBlocking() throws {
        let fixture = try KafkaFixture(partitions: 2)
        try fixture.produce(events: 2000, invalidRatio: 0.05,
                            extra: [nil, nil, Array("not json".utf8), [], Array("[1]".utf8), [0xFF, 0xFE]])
        let consumer = try fixture.startConsumer().wait()
        #expect(consumer.exitCode == 0, "\(consumer.output)")
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
        #expect(try fixture.database.count("SELECT count(*) FROM audit_dead_letter WHERE detail = 'null value (tombstone)'") == 2)
        #expect(try fixture.database.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'invalid UTF-8'") == 1)
        #expect(try fixture.database.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'not an object'") == 1)
        #expect(try fixture.database.count("SELECT count(*) FROM audit_dead_letter") > 80)
    }

    /// `--dead-letter-topic`: every committed dead letter is also on the topic, raw message as
    /// value and reason and position in headers, as an outside client (kcat) reads them.
    @Test func deadLettersArePublishedToTheDeadLetterTopic() throws {
        let fixture = try KafkaFixture(partitions: 2)
        let topic = "dlq-\(fixture.topic)"
        try fixture.cluster.createTopic(topic, partitions: 1)
        try fixture.produce(events: 1000, invalidRatio: 0.05, extra: [Array("not json".utf8)])
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                       fixture.consumeArguments() + ["--dead-letter-topic", topic, "-X", "fetch.wait.max.ms=100"])
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(!result.output.contains("CONFWARN"), "consumer-only -X settings reach the producer: \(result.output)")
        let kcat = try Shell.run("/usr/bin/kcat", ["-C", "-b", fixture.cluster.bootstrapServers, "-t", topic, "-e", "-q",
                                                   "-f", "%k|%h|%s\n"])
        #expect(kcat.exitCode == 0, "\(kcat.output)")
        let messages = kcat.output.split(separator: "\n")
        let deadLettered = try fixture.database.count("SELECT count(*) FROM audit_dead_letter")
        #expect(deadLettered > 10)
        #expect(messages.count == deadLettered, "\(kcat.output.prefix(2000))")
        let notJSON = messages.first { $0.hasSuffix("|not json") }
        #expect(notJSON?.contains("audit-ingest-reason=invalid JSON") == true, "\(kcat.output.prefix(2000))")
        #expect(notJSON?.contains("audit-ingest-source=kafka:tests:\(fixture.topic)") == true)
        let position = try fixture.database.connection.execute(
            #"SELECT "partition" || ':' || "offset" FROM audit_dead_letter WHERE raw_payload = 'not json'::bytea"#).scalar
        #expect(notJSON?.hasPrefix("\(position ?? "?")|") == true, "\(notJSON ?? "")")
    }

    @Test func sigtermDrainsAndCommits() throws {
        let fixture = try KafkaFixture(partitions: 2)
        try fixture.produce(events: 4000)
        let consumer = try fixture.startConsumer(exitWhenIdle: nil)
        #expect(try fixture.waitForStored(atLeast: 4000))
        consumer.signal(SIGTERM)
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("stored              4000"))
        #expect(try fixture.database.exactlyOnce(produced: 4000))
    }

    @Test func killedConsumerRestartedAtRandomPointsStoresEverythingExactlyOnce() throws {
        let fixture = try KafkaFixture(partitions: 8)  // ≤ 2.5 MB per partition: the mock keeps about 5 MB
        try fixture.produce(events: 40_000, invalidRatio: 0.01)
        var generator = SeededGenerator(seed: 81)
        var kills = 0
        for _ in 0..<3 {
            let before = try fixture.database.accounted()
            let consumer = try fixture.startConsumer()
            waitUntil(interval: .milliseconds(20)) { try fixture.database.accounted() != before }
            randomPause(upTo: .milliseconds(400), using: &generator)
            consumer.signal(SIGKILL)
            if consumer.wait().exitCode == 128 + SIGKILL { kills += 1 }
            if try fixture.database.accounted() >= fixture.produced { break }
        }
        #expect(kills >= 1)
        let final = try fixture.startConsumer().wait()
        #expect(final.exitCode == 0, "\(final.output)")
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
    }

    @Test func consumersJoiningAndLeavingTheGroupLoseAndDuplicateNothing() throws {
        let fixture = try KafkaFixture(partitions: 4)
        try fixture.produce(events: 10_000)
        let first = try fixture.startConsumer(exitWhenIdle: nil)
        let second = try fixture.startConsumer(exitWhenIdle: nil)
        #expect(try fixture.waitForStored(atLeast: 2000))
        // More arrives while the group changes: one member leaves, another joins.
        try fixture.produce(events: 10_000, seed: 7)
        first.signal(SIGTERM)
        #expect(first.wait().exitCode == 0)
        let third = try fixture.startConsumer(exitWhenIdle: nil)
        try fixture.produce(events: 10_000, seed: 9)
        #expect(try fixture.waitForStored(atLeast: fixture.produced, timeout: 120))
        second.signal(SIGTERM)
        third.signal(SIGTERM)
        #expect(second.wait().exitCode == 0)
        #expect(third.wait().exitCode == 0)
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
    }

    @Test func brokerDownAndUpMidStream() throws {
        let fixture = try KafkaFixture(partitions: 4)
        try fixture.produce(events: 20_000)
        let consumer = try fixture.startConsumer(exitWhenIdle: nil)
        #expect(try fixture.waitForStored(atLeast: 1000))
        try fixture.cluster.setBroker(1, up: false)
        // Keep it down until the consumer has visibly stalled (nothing new for half a second).
        var last = try fixture.database.accounted()
        var quietSince = ContinuousClock.now
        waitUntil(timeout: .seconds(20)) {
            let now = try fixture.database.accounted()
            if now != last { (last, quietSince) = (now, .now) }
            return quietSince.duration(to: .now) >= .milliseconds(500)
        }
        try fixture.cluster.setBroker(1, up: true)
        #expect(try fixture.waitForStored(atLeast: fixture.produced, timeout: 120))
        consumer.signal(SIGTERM)
        #expect(consumer.wait().exitCode == 0)
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
    }

    /// PostgreSQL restarts under a running consume, politely or as a crash (or failover) does:
    /// every connection, the idle control one too, comes back; nothing is lost or doubled.
    @Test(arguments: [PrivateCluster.ShutdownMode.fast, .immediate])
    func postgresRestartMidStreamLosesNothing(_ mode: PrivateCluster.ShutdownMode) throws {
        let (postgres, fixture) = try KafkaFixture.onPrivateCluster(partitions: 8)
        try fixture.produce(events: 30_000)
        let consumer = try fixture.startConsumer(exitWhenIdle: nil)
        #expect(try fixture.waitForStored(atLeast: 3000))
        try postgres.restart(mode)
        try fixture.produce(events: 10_000, seed: 13)  // work that can only be stored after the restart
        let check = try PipelineDatabase(url: postgres.url)
        waitUntil(timeout: .seconds(120)) { try check.accounted() >= fixture.produced }
        consumer.signal(SIGTERM)
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output)")
        let counts = try check.connection.execute("""
            SELECT (SELECT count(*) FROM audit_log), (SELECT count(DISTINCT id) FROM audit_log),
                   (SELECT count(*) FROM audit_dead_letter), (SELECT string_agg(reason || ':' || coalesce(sqlstate, ''), ',') FROM audit_dead_letter)
            """).rows
        #expect(try check.exactlyOnce(produced: fixture.produced), "produced \(fixture.produced): \(counts)")
        #expect(try check.count("SELECT count(*) FROM audit_dead_letter") == 0)
    }

    /// PostgreSQL down for longer than max.poll.interval.ms: the rings fill, the consumer pauses
    /// fetching but keeps polling, so it stays in the group (one assignment, no rebalance) and
    /// stores everything once PostgreSQL is back.
    @Test func longPostgresOutagePausesFetchingWithoutLeavingTheGroup() throws {
        let (postgres, fixture) = try KafkaFixture.onPrivateCluster(partitions: 8)
        try fixture.produce(events: 2000)
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"), fixture.consumeArguments(exitWhenIdle: nil) + [
            "--ring-capacity", "1024", "-X", "max.poll.interval.ms=6000"])
        #expect(try fixture.waitForStored(atLeast: 2000))
        try postgres.stop()
        try fixture.produce(events: 20_000, seed: 21)  // far more than the rings hold
        // The outage lasts until the consumer has paused fetching and then for twice
        // max.poll.interval.ms: long enough that a consumer that stopped polling would be out of the group.
        waitUntil { consumer.outputSoFar.contains("pausing fetches") }
        Thread.sleep(forTimeInterval: 12)  // the outage itself, not a wait for something: 2 x max.poll.interval.ms
        try postgres.start()
        let check = try PipelineDatabase(url: postgres.url)
        waitUntil(timeout: .seconds(120)) { try check.accounted() >= fixture.produced }
        consumer.signal(SIGTERM)
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output.suffix(3000))")
        #expect(result.output.contains("pausing fetches"), "\(result.output.suffix(3000))")
        #expect(result.output.components(separatedBy: "partitions assigned").count - 1 == 1, "\(result.output.suffix(3000))")
        #expect(try check.exactlyOnce(produced: fixture.produced))
    }

    @Test func consumeWithAnAdminPortExportsPipelineMetrics() throws {
        let fixture = try KafkaFixture(partitions: 2)
        try fixture.produce(events: 2000, invalidRatio: 0.05)
        let port = try freeTCPPort()
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                       fixture.consumeArguments(exitWhenIdle: nil) + ["--admin-port", "\(port)"])
        #expect(try fixture.waitForStored(atLeast: fixture.produced))
        let stored = try fixture.database.count("SELECT count(*) FROM audit_log")
        let source = "source=\"kafka:tests:\(fixture.topic)\""
        let expected = [
            "audit_ingest_events_stored_total{\(source)} \(stored)",
            "audit_ingest_events_received_total{\(source)} \(fixture.produced)",
            "audit_ingest_events_dead_lettered_total{reason=",
            "audit_ingest_flush_duration_seconds_bucket{\(source),le=\"+Inf\"}",
            "audit_ingest_consumer_lag{partition=\"0\"",
            "audit_ingest_ring_occupancy{shard=\"1\"}",
            "audit_ingest_alert{alert=\"consumer_lag\"} 0",
        ]
        // The status is published about once a second: poll until it shows everything.
        var metrics = ""
        waitUntil(timeout: .seconds(30), interval: .milliseconds(100)) {
            metrics = try Shell.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/metrics"]).output
            return expected.allSatisfy(metrics.contains)
        }
        consumer.signal(SIGTERM)
        #expect(consumer.wait().exitCode == 0)
        for line in expected { #expect(metrics.contains(line), "missing \(line) in \(metrics)") }
    }
}

/// Exactly once under the Kafka operations of issue 12: shard-count changes, cooperative
/// rebalances, SIGTERM while PostgreSQL is down.
@Suite(.serialized, .timeLimit(.minutes(10))) struct KafkaOperationsTests {
    /// A consumer killed mid-stream with 3 shards, restarted with 2 and then with 4: nothing is
    /// refused, read twice or lost.
    @Test func changingTheShardCountContinuesExactlyOnce() throws {
        let fixture = try KafkaFixture(partitions: 4)
        try fixture.produce(events: 30_000, invalidRatio: 0.01)
        let consumer = try fixture.startConsumer(shards: 3)
        #expect(try fixture.waitForStored(atLeast: 1000))
        var generator = SeededGenerator(seed: 227)
        randomPause(upTo: .milliseconds(300), using: &generator)
        consumer.signal(SIGKILL)
        _ = consumer.wait()
        try fixture.produce(events: 5000, seed: 3)
        let second = try fixture.startConsumer(shards: 2).wait()
        #expect(second.exitCode == 0, "\(second.output.suffix(3000))")
        try fixture.produce(events: 2000, seed: 4)
        let third = try fixture.startConsumer(shards: 4).wait()
        #expect(third.exitCode == 0, "\(third.output.suffix(3000))")
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
    }

    /// Members join and leave under the cooperative-sticky protocol while messages keep coming:
    /// no member dies (a revoked partition's in-flight messages are dropped, not written), and
    /// everything is stored once.
    @Test func cooperativeRebalancesKillNoConsumerAndLoseNothing() throws {
        let fixture = try KafkaFixture(partitions: 6)
        try fixture.produce(events: 10_000)
        let arguments = fixture.consumeArguments(exitWhenIdle: nil) + ["-X", "partition.assignment.strategy=cooperative-sticky"]
        let binary = Shell.executable(named: "audit-ingest")
        let first = try Shell.spawn(binary, arguments)
        #expect(try fixture.waitForStored(atLeast: 2000))
        let second = try Shell.spawn(binary, arguments)
        try fixture.produce(events: 10_000, seed: 7)
        let third = try Shell.spawn(binary, arguments)
        try fixture.produce(events: 10_000, seed: 9)
        first.signal(SIGTERM)
        let firstResult = first.wait()
        #expect(firstResult.exitCode == 0, "\(firstResult.output.suffix(3000))")
        #expect(try fixture.waitForStored(atLeast: fixture.produced, timeout: 120))
        second.signal(SIGTERM)
        third.signal(SIGTERM)
        for result in [second.wait(), third.wait()] {
            #expect(result.exitCode == 0, "\(result.output.suffix(3000))")
            #expect(!result.output.contains("another process committed"))
        }
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
    }

    /// Ten thousand partitions, more than a ring has slots: each flush moves thousands of stored
    /// positions (a linear compare-and-set), and the consumer never waits for room that cannot
    /// come (a watermark slot per assigned partition used to exceed the ring).
    @Test func tenThousandPartitions() throws {
        let fixture = try KafkaFixture(partitions: 10_000)
        try fixture.produce(events: 20_000)
        let run = try Shell.spawn(Shell.executable(named: "audit-ingest"), fixture.consumeArguments(exitWhenIdle: 3) + [
            "--partitions", "all", "--ring-capacity", "8192"]).wait(timeout: 240)
        #expect(run.exitCode == 0, "\(run.output.suffix(3000))")
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
        #expect(try fixture.database.count(#"SELECT count(DISTINCT "partition") FROM ingest_offsets"#) == 10_000)
    }

    /// A message over the event size limit is dead-lettered with its first KiB, its length and a
    /// hash, not copied whole (memory is bounded in bytes).
    @Test func anOversizedMessageKeepsOnlyAPrefixInItsDeadLetter() throws {
        let fixture = try KafkaFixture(partitions: 1)
        let producer = try KafkaProducer(configuration: KafkaConfiguration([
            "bootstrap.servers": fixture.cluster.bootstrapServers, "message.max.bytes": "3000000"]))
        try producer.send(topic: fixture.topic, partition: 0, value: Array(repeating: UInt8(ascii: "x"), count: 1_500_000))
        try producer.flush()
        try fixture.produce(events: 10)
        let run = try fixture.startConsumer().wait()
        #expect(run.exitCode == 0, "\(run.output.suffix(2000))")
        let row = try fixture.database.connection.execute(
            "SELECT reason, length(raw_payload), detail FROM audit_dead_letter").rows
        #expect(row.count == 1 && row[0][0] == "event too large" && row[0][1] == "1024", "\(row)")
        // The size once ("1500000 bytes, limit ..."), then the hash.
        let detail = row.first?[2] ?? ""
        #expect(detail.hasPrefix("1500000 bytes, limit") && detail.contains("; 64-bit hash "), "\(row)")
        #expect(detail.components(separatedBy: "1500000").count == 2, "the size is given once: \(detail)")
        #expect(try fixture.database.exactlyOnce(produced: 11))
    }

    /// SIGTERM while PostgreSQL is down: the consumer stops within --stop-timeout, exits non-zero
    /// and says nothing is lost; a later run stores everything exactly once.
    @Test func sigtermDuringAPostgresOutageStopsInBoundedTime() throws {
        let (postgres, fixture) = try KafkaFixture.onPrivateCluster(partitions: 4)
        try fixture.produce(events: 3000)
        let port = try freeTCPPort()
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                       fixture.consumeArguments(exitWhenIdle: nil) + ["--stop-timeout", "3", "--admin-port", "\(port)"])
        #expect(try fixture.waitForStored(atLeast: 3000))
        try postgres.stop()
        try fixture.produce(events: 3000, seed: 5)
        // Wait until the consumer holds the new messages (received, not committed).
        let received = "audit_ingest_events_received_total{source=\"kafka:tests:\(fixture.topic)\"} \(fixture.produced)"
        waitUntil { try Shell.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/metrics"]).output.contains(received) }
        let started = Date()
        consumer.signal(SIGTERM)
        let result = consumer.wait(timeout: 60)
        #expect(Date().timeIntervalSince(started) < 20, "took \(Date().timeIntervalSince(started)) s")
        #expect(result.exitCode != 0 && result.exitCode != 128 + SIGKILL, "\(result.output.suffix(2000))")
        #expect(result.output.contains("nothing is lost"), "\(result.output.suffix(2000))")
        try postgres.start()
        let check = try PipelineDatabase(url: postgres.url)
        let again = try fixture.startConsumer().wait()
        #expect(again.exitCode == 0, "\(again.output.suffix(2000))")
        #expect(try check.exactlyOnce(produced: fixture.produced))
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct RetentionGapTests {
    /// Messages the broker deleted before they were read cannot be stored, but they must not be
    /// skipped silently: the consumer reports exactly how many are gone.
    @Test func messagesDeletedByRetentionBeforeTheyWereReadAreReported() throws {
        let fixture = try KafkaFixture(partitions: 1)
        try fixture.produce(events: 1000)
        let first = try fixture.startConsumer().wait()
        #expect(first.exitCode == 0, "\(first.output)")
        // About 12 MB more into the one partition: the mock cluster keeps about 5 MB, so the
        // oldest segments, including unread messages right after position 1000, are deleted.
        try fixture.produce(events: 25_000, seed: 5)
        let second = try fixture.startConsumer().wait(timeout: 240)
        #expect(second.exitCode == 0)
        let gap = second.output.split(separator: "\n").first { $0.contains("deleted by the broker") }
        let missing = gap.flatMap { line in line.split(separator: " ").first { $0.hasPrefix("missing=") } }
            .flatMap { Int($0.dropFirst("missing=".count)) }
        #expect(missing != nil && missing! > 0, "\(second.output.suffix(2000))")
        // Everything the broker still had is stored exactly once; the rest is accounted as missing.
        #expect(try fixture.database.accounted() + (missing ?? 0) == fixture.produced)
    }
}
