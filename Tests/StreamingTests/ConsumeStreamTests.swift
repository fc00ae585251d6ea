import Foundation
import Kafka
import Postgres
import SampleData
import TestSupport
import Testing

/// `consume --stream`: one process ingests from Kafka and streams what it stored.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ConsumeStreamTests {
    @Test func consumeWithStreamDeliversEveryEventItIngestsInFeedOrder() throws {
        TestLogging.bootstrap()
        let fixture = try StreamFixture()
        let tenants = SampleEvents.tenantIDs(count: 6)
        for (index, id) in tenants.enumerated() {
            try fixture.owner.query("INSERT INTO tenant (id, name, code) VALUES ($1::uuid, $2, $3)", [id, "Tenant \(index)", "t-\(index)"])
        }
        let cluster = try EmbeddedKafkaCluster()
        let topic = "audit-stream-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: 2)
        let producer = try KafkaProducer(configuration: KafkaConfiguration(["bootstrap.servers": cluster.bootstrapServers]))
        var index = 0
        for event in SampleEvents(.init(count: 900, tenants: 6, months: 3, seed: 7, tenantSeed: 42)) {
            try producer.send(topic: topic, partition: Int32(index % 2), value: Array(SampleEvents.ndjson(event).utf8))
            index += 1
        }
        try producer.flush()

        let receiver = try Receiver.start()
        defer { receiver.stop() }
        _ = try fixture.createDestination(["--name", "everything", "--url", receiver.url, "--from", "beginning"])
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"), [
            "consume", "--brokers", cluster.bootstrapServers, "--topic", topic, "--group", "stream-tests", "--database-url", fixture.url,
            "--report-interval", "1", "--stream", "--stream-poll-interval", "0.05"])
        defer { consumer.signal(SIGKILL); _ = consumer.wait(timeout: 10) }

        #expect(waitUntil(timeout: .seconds(90)) { receiver.acceptedIDs().count >= 900 }, "\(consumer.outputSoFar)")
        let stored = try fixture.owner.execute("SELECT count(*) FROM audit_log").scalar
        #expect(stored == "900", "every produced event stored")
        // Each tenant's events in its feed order, every one once.
        let byTenant = Dictionary(grouping: receiver.accepted().filter { !$0.ids.isEmpty }) { $0.json?["tenant_id"] as? String ?? "" }
        for tenant in tenants {
            #expect(byTenant[tenant, default: []].flatMap(\.ids) == (try fixture.feedOrder(tenant: tenant)), "tenant \(tenant)")
        }
        consumer.signal(SIGTERM)
        #expect(consumer.wait(timeout: 30).exitCode == 0, "\(consumer.outputSoFar)")
    }
}
