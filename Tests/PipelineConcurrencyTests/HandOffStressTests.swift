import Foundation
@testable import Pipeline
import Postgres
import SampleData
import TestSupport
import Testing

/// The pipeline's real hand-off between threads, end to end: a source thread decodes and routes,
/// per-shard rings carry rows to the flusher threads, flushers commit and hand spent batches
/// back for the source to refill, and the doorbells wake whoever sleeps. Small rings, small
/// batches and a shard budget of 1 MiB keep every part of it busy: the source waits for room,
/// flushers wait for items, batches go round many times. scripts/test also runs this target
/// under ThreadSanitizer, where a data race anywhere along that path fails it.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HandOffStressTests {
    @Test(arguments: [1, 3]) func everyEventCrossesTheHandOffExactlyOnce(shards: Int) throws {
        let url = try TestDatabase.createMigrated(prefix: "handoff")
        let connection = try PostgresConnection(url)
        defer { connection.close() }
        for (index, id) in SampleEvents.tenantIDs(count: 6).enumerated() {
            try connection.query("INSERT INTO tenant (id, name, code) VALUES ($1, $2, $3)", [id, "Tenant \(index)", "t-\(index)"])
        }
        let events = 20_000
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("handoff-\(UUID()).ndjson").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = SampleEvents(.init(count: events, tenants: 6, invalidRatio: 0.01, seed: UInt64(40 + shards), tenantSeed: 42))
            .map { SampleEvents.ndjson($0) + "\n" }
        try Data(lines.joined().utf8).write(to: URL(fileURLWithPath: path))

        var configuration = IngestConfiguration(shards: shards, batchSize: 64, maxBatchAge: .milliseconds(5),
                                                ringCapacity: 32, maxShardBytes: 1 << 20)
        configuration.foldEvery = .milliseconds(100)
        let engine = IngestEngine(database: PostgresConfiguration(connectionString: ConnectionString(url)),
                                  configuration: configuration)
        let summary = try engine.ingest(try FileSource(path: path))

        func count(_ sql: String) throws -> Int { Int(try connection.execute(sql).scalar ?? "") ?? -1 }
        let deadLettered = summary.deadLettered.values.reduce(0, +)
        #expect(summary.isComplete)
        #expect(summary.stored + deadLettered == events, "\(summary)")
        #expect(summary.stored > events * 9 / 10)
        #expect(try count("SELECT count(*) FROM audit_log") == summary.stored)
        #expect(try count("SELECT count(*) FROM audit_dead_letter") == deadLettered)
        #expect(try count("SELECT count(DISTINCT (tenant_id, id)) FROM audit_log") == summary.stored)
        // The folded per-tenant counts agree with the rows: no batch was counted twice or lost.
        #expect(try count("SELECT coalesce(sum(audit_log_count), 0) FROM tenant_metrics_current") == summary.stored)
    }
}
