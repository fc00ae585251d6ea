import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

/// Kafka topic destinations, read back by an outside client (kcat): one message per event,
/// keyed by tenant, in feed order per tenant, and nothing lost while the brokers are down.
@Suite(.serialized, .timeLimit(.minutes(5))) struct KafkaDestinationTests {
    /// One message as kcat prints it with `-f '%k\t%h\t%s\n'`.
    struct Message {
        var key: String
        var headers: [String: String]
        var event: [String: Any]
        var id: String { event["id"] as? String ?? "" }
    }

    /// Every message on `topic` so far, partition by partition (each in its order).
    static func read(_ topic: String, from cluster: EmbeddedKafkaCluster) -> [Message] {
        guard let kcat = try? Shell.run("/usr/bin/kcat", ["-C", "-b", cluster.bootstrapServers, "-t", topic, "-e", "-q",
                                                          "-f", "%k\t%h\t%s\n"]), kcat.exitCode == 0 else { return [] }
        return kcat.output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let event = (try? JSONSerialization.jsonObject(with: Data(fields[2].utf8))) as? [String: Any] else {
                return nil
            }
            let headers = fields[1].split(separator: ",").reduce(into: [String: String]()) { headers, pair in
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { headers[String(parts[0])] = String(parts[1]) }
            }
            return Message(key: String(fields[0]), headers: headers, event: event)
        }
    }

    @Test func everyEventIsOneMessageKeyedByItsTenantInFeedOrder() throws {
        let fixture = try StreamFixture()
        let cluster = try EmbeddedKafkaCluster()
        let topic = "audit-out-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: 3)
        try fixture.insert(tenant: StreamFixture.tenantA, count: 150)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 100)
        try fixture.insert(tenant: StreamFixture.tenantA, count: 50)

        let refused = try fixture.cli(["stream", "destination", "create", "--name", "bad", "--kind", "kafka", "--url", "kafka://\(cluster.bootstrapServers)"])
        #expect(refused.exitCode != 0 && refused.output.contains("kafka://HOST:PORT"), "\(refused.output)")
        let url = "kafka://\(cluster.bootstrapServers)/\(topic)"
        _ = try fixture.createDestination(["--name", "bus", "--kind", "kafka", "--url", url, "--from", "beginning", "--batch-size", "40"])
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }

        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(500)) { Self.read(topic, from: cluster).count >= 300 },
                "\(streamer.outputSoFar)")
        let messages = Self.read(topic, from: cluster)
        #expect(messages.count == 300, "each event once")
        for message in messages {
            #expect(message.key == message.event["tenant_id"] as? String, "keyed by tenant: \(message.key)")
            #expect(message.headers["audit-ingest-event-id"] == message.id && message.headers["audit-ingest-destination"] == "bus")
        }
        for tenant in [StreamFixture.tenantA, StreamFixture.tenantB] {
            // One key, one partition: a tenant's messages in the order of its feed.
            #expect(messages.filter { $0.key == tenant }.map(\.id) == (try fixture.feedOrder(tenant: tenant)), "tenant \(tenant)")
        }

        let test = try fixture.cli(["stream", "destination", "test", "bus"])
        #expect(test.exitCode == 0, "\(test.output)")
        #expect(Self.read(topic, from: cluster).contains { $0.headers["audit-ingest-test"] == "1" && $0.event["action"] as? String == "audit_ingest.stream.test" })
    }

    @Test func whileTheBrokerIsDownNothingIsDeliveredAndAfterwardsEverything() throws {
        let fixture = try StreamFixture()
        let cluster = try EmbeddedKafkaCluster()
        let topic = "audit-out-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: 2)
        try cluster.setBroker(1, up: false)
        try fixture.insert(tenant: StreamFixture.tenantA, count: 120)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 80)
        // The destination's librdkafka properties, by reference: give up on a message after 1.5 s
        // (librdkafka's own default is 5 minutes; ours 30 s).
        let properties = FileManager.default.temporaryDirectory.appendingPathComponent("kafka-\(UUID().uuidString).properties").path
        try "# the streamer's producer\nmessage.timeout.ms=1500\n".write(toFile: properties, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: properties) }
        let id = try fixture.createDestination(["--name", "bus", "--kind", "kafka", "--url", "kafka://\(cluster.bootstrapServers)/\(topic)",
                                                "--secret", "file:\(properties)", "--from", "beginning", "--batch-size", "50"])
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }

        #expect(waitUntil(timeout: .seconds(20)) { streamer.outputSoFar.contains("delivery failed; retrying") }, "\(streamer.outputSoFar)")
        #expect(try fixture.owner.query("SELECT coalesce(sum(delivered), 0)::text FROM stream_cursor WHERE destination_id = $1::uuid", [id]).scalar == "0",
                "no cursor moves while nothing is acknowledged")
        #expect(try fixture.destinationState(id).state == "active")

        try cluster.setBroker(1, up: true)
        var seen: [Message] = []
        #expect(waitUntil(timeout: .seconds(90), interval: .milliseconds(500)) {
            seen = Self.read(topic, from: cluster)
            return Set(seen.map(\.id)).count >= 200
        }, "\(streamer.outputSoFar.suffix(3000))")
        for tenant in [StreamFixture.tenantA, StreamFixture.tenantB] {
            // At least once: a batch cut short is sent again whole; its first copies keep feed order.
            var firsts: [String] = [], known = Set<String>()
            for message in seen where message.key == tenant && known.insert(message.id).inserted { firsts.append(message.id) }
            #expect(firsts == (try fixture.feedOrder(tenant: tenant)), "tenant \(tenant)")
        }
        #expect(streamer.outputSoFar.contains("destination delivers again"))
    }

    @Test func killNineWhileSendingLosesNothingAndRepeatsAtMostTheBatchInFlight() throws {
        let fixture = try StreamFixture()
        let cluster = try EmbeddedKafkaCluster()
        let topic = "audit-out-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: 1)
        for _ in 0..<10 { try fixture.insert(tenant: StreamFixture.tenantA, count: 200) }
        let id = try fixture.createDestination(["--name", "bus", "--kind", "kafka", "--url", "kafka://\(cluster.bootstrapServers)/\(topic)",
                                                "--from", "beginning", "--batch-size", "50"])
        func delivered() throws -> Int {
            Int(try fixture.owner.query("SELECT coalesce(sum(delivered), 0)::text FROM stream_cursor WHERE destination_id = $1::uuid", [id])
                .scalar ?? "") ?? 0
        }
        let kills = 3
        for round in 1...kills {
            let streamer = try fixture.startStreamer()
            let before = try delivered()
            // Killed while it sends: once its cursor has moved on by some batches, at whatever point
            // of the next one it is then (the cursor is cheap to poll; the topic is not).
            #expect(waitUntil(timeout: .seconds(30), interval: .milliseconds(2)) { try delivered() >= before + 300 },
                    "round \(round): \(streamer.outputSoFar)")
            streamer.signal(SIGKILL)
            _ = streamer.wait(timeout: 10)
        }
        #expect(try delivered() < 2000, "the kills came before the end")
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        let order = try fixture.feedOrder(tenant: StreamFixture.tenantA)
        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(200)) { Set(Self.read(topic, from: cluster).map(\.id)).count == order.count },
                "\(streamer.outputSoFar)")
        let ids = Self.read(topic, from: cluster).map(\.id)
        #expect(ids.count - order.count <= kills * 50, "at most one batch again per kill: \(ids.count - order.count) repeated")
        var seen = Set<String>()
        let firsts = ids.filter { seen.insert($0).inserted }
        #expect(firsts.count == order.count && firsts == order,
                "every event, first seen in feed order: \(firsts.count) of \(order.count) seen, \(zip(firsts, order).filter { $0 != $1 }.count) out of place")
    }
}
