import Foundation
import Kafka
import Pipeline
import SampleData
import TestSupport
import Testing

/// What consume keeps of a message's headers, key and position, and the mappings that read
/// headers: `--kafka-metadata`, `--keep-traceparent`, `--tenant-from header:NAME` and
/// CloudEvents binary mode, end to end through the mock cluster into PostgreSQL.
@Suite(.serialized, .timeLimit(.minutes(4))) struct MessageContextConsumeTests {
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    let tenant = SampleEvents.tenantIDs(count: 6)[0]

    func event(_ id: UUID, metadata: String) -> [UInt8] {
        Array("""
            {"id":"\(id.uuidString.lowercased())","tenant_id":"\(tenant)","action":"login","severity":"INFO",\
            "timestamp":"2026-11-01T10:00:00Z","metadata":\(metadata)}
            """.utf8)
    }

    func consume(_ fixture: KafkaFixture, _ extra: [String]) throws -> Shell.Result {
        try Shell.spawn(Shell.executable(named: "audit-ingest"), fixture.consumeArguments() + extra).wait()
    }

    func metadata(_ fixture: KafkaFixture, _ id: UUID, _ path: String) throws -> String? {
        try fixture.database.connection.query(
            "SELECT custom_metadata #>> '{\(path)}' FROM audit_log WHERE id = $1", [id.uuidString.lowercased()]).scalar
    }

    @Test func nativeEventsKeepKafkaMetadataAndAValidTraceparent() throws {
        let fixture = try KafkaFixture(partitions: 1)
        let (traced, badTrace, plain) = (UUID(), UUID(), UUID())
        try fixture.producer.send(topic: fixture.topic, key: Array("user-7".utf8), value: event(traced, metadata: #"{"kafka":"mine","app":1}"#),
                                  headers: [("traceparent", Self.traceparent), ("tracestate", "vendor=1"), ("x-app", "billing")])
        try fixture.producer.send(topic: fixture.topic, key: Array("user-8".utf8), value: event(badTrace, metadata: "null"),
                                  headers: [("traceparent", "00-not-a-trace")])
        try fixture.producer.send(topic: fixture.topic, key: [], value: event(plain, metadata: "{}"), headers: [])
        try fixture.producer.flush()
        let run = try consume(fixture, ["--kafka-metadata", "--keep-traceparent"])
        #expect(run.exitCode == 0, "\(run.output)")
        #expect(try fixture.database.count("SELECT count(*) FROM audit_log") == 3, "\(run.output)")
        #expect(try metadata(fixture, traced, "traceparent") == Self.traceparent)
        #expect(try metadata(fixture, traced, "tracestate") == "vendor=1")
        #expect(try metadata(fixture, traced, "app") == "1", "the event's own metadata is kept")
        #expect(try metadata(fixture, traced, "kafka,topic") == fixture.topic)
        #expect(try metadata(fixture, traced, "kafka,partition") == "0" && metadata(fixture, traced, "kafka,offset") == "0")
        #expect(try metadata(fixture, traced, "kafka,key") == "user-7" && metadata(fixture, traced, "kafka,headers,x-app") == "billing")
        #expect(try Int64(metadata(fixture, traced, "kafka,timestamp") ?? "").map { $0 > 1_700_000_000_000 } == true)
        // An invalid traceparent is not kept; the event is stored all the same.
        #expect(try metadata(fixture, badTrace, "traceparent") == nil && metadata(fixture, badTrace, "kafka,offset") == "1")
        #expect(try metadata(fixture, plain, "kafka,offset") == "2")
    }

    @Test func nativeEventsKeepNothingUnlessAsked() throws {
        let fixture = try KafkaFixture(partitions: 1)
        let id = UUID()
        try fixture.producer.send(topic: fixture.topic, key: Array("k".utf8), value: event(id, metadata: #"{"app":1}"#),
                                  headers: [("traceparent", Self.traceparent)])
        try fixture.producer.flush()
        let run = try consume(fixture, [])
        #expect(run.exitCode == 0, "\(run.output)")
        #expect(try fixture.database.connection.execute("SELECT custom_metadata::text FROM audit_log").scalar == #"{"app": 1}"#)
    }

    @Test func cloudEventsBinaryModeIsMappedWithTheTenantFromAHeaderAndBadTenantsAreDeadLettered() throws {
        let fixture = try KafkaFixture(partitions: 1)
        let attributes = [("ce_specversion", "1.0"), ("ce_source", "/billing"), ("ce_type", "invoice.paid"),
                          ("ce_subject", "invoice/9"), ("ce_time", "2026-11-01T10:00:00Z"), ("ce_severity", "error"),
                          ("content-type", "application/json")]
        let data = Array(#"{"actor":"alice","amount":12}"#.utf8)
        try fixture.producer.send(topic: fixture.topic, key: Array("a".utf8), value: data,
                                  headers: attributes + [("ce_id", "evt-1"), ("x-tenant", tenant)])
        try fixture.producer.send(topic: fixture.topic, key: Array("b".utf8), value: data, headers: attributes + [("ce_id", "evt-2")])
        try fixture.producer.send(topic: fixture.topic, key: Array("c".utf8), value: data,
                                  headers: attributes + [("ce_id", "evt-3"), ("x-tenant", "acme")])
        // Structured mode still works beside binary mode.
        let structured = Array("""
            {"specversion":"1.0","id":"evt-4","source":"/billing","type":"invoice.sent","time":"2026-11-01T11:00:00Z"}
            """.utf8)
        try fixture.producer.send(topic: fixture.topic, key: Array("d".utf8), value: structured, headers: [("x-tenant", tenant)])
        try fixture.producer.flush()
        let run = try consume(fixture, ["--format", "cloudevents", "--tenant-from", "header:x-tenant"])
        #expect(run.exitCode == 0, "\(run.output)")
        let row = try fixture.database.connection.execute("""
            SELECT tenant_id::text, action, resource_type, resource_id, severity, "timestamp" = '2026-11-01T10:00:00Z',
                   user_id IS NOT NULL, custom_metadata #>> '{record,data,amount}', custom_metadata #>> '{record,id}'
            FROM audit_log WHERE action = 'invoice.paid'
            """).rows
        #expect(row.map { $0.map { $0 ?? "NULL" } } == [[tenant, "invoice.paid", "/billing", "invoice/9", "ERROR", "t", "t", "12", "evt-1"]])
        #expect(try fixture.database.count("SELECT count(*) FROM audit_log WHERE action = 'invoice.sent'") == 1)
        let deadLetters = try fixture.database.connection.execute(
            #"SELECT "offset", reason, detail FROM audit_dead_letter ORDER BY "offset""#).rows
        #expect(deadLetters.map { $0.map { $0 ?? "NULL" } } == [
            ["1", "invalid uuid: tenant_id", "header x-tenant is missing or not a UUID"],
            ["2", "invalid uuid: tenant_id", "header x-tenant is missing or not a UUID"],
        ])
    }
}
