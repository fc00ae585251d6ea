import CoreMetrics
import AuditCore
import Foundation
import Pipeline
import Postgres
import TestSupport
import SampleData

/// A migrated database with sample tenants, and sample files.
struct PipelineFixture {
    let url: String
    let connection: PostgresConnection
    let tenants: Int

    init(tenants: Int = 6, seed: UInt64 = 42, url: String? = nil) throws {
        self.url = try url ?? TestDatabase.createMigrated(prefix: "pipeline")
        connection = try PostgresConnection(self.url)
        self.tenants = tenants
        for (index, id) in SampleEvents.tenantIDs(count: tenants, seed: seed).enumerated() {
            try connection.query("INSERT INTO tenant (id, name, code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                 [id, "Tenant \(index)", "t-\(seed)-\(index)"])
        }
    }

    var database: PostgresConfiguration { PostgresConfiguration(connectionString: ConnectionString(url)) }

    func engine(shards: Int = 3, batchSize: Int = 500, maxBatchAge: Duration = .milliseconds(50), unknownTenants: UnknownTenantPolicy = .deadLetter,
                foldEvery: Duration = .seconds(60), metrics: MetricsFactory = MetricsSystem.factory) -> IngestEngine {
        var configuration = IngestConfiguration(shards: shards, batchSize: batchSize, maxBatchAge: maxBatchAge,
                                                unknownTenants: unknownTenants)
        configuration.foldEvery = foldEvery
        return IngestEngine(database: database, configuration: configuration, metricsFactory: metrics)
    }

    func count(_ sql: String) throws -> Int {
        Int(try connection.execute(sql).scalar ?? "") ?? -1
    }

    /// Every line is exactly once in audit_log or audit_dead_letter.
    func accountedExactlyOnce(lines: Int, source: String) throws -> Bool {
        let stored = try count("SELECT count(*) FROM audit_log")
        let dead = Int(try connection.query("SELECT count(*) FROM audit_dead_letter WHERE source = $1", [source]).scalar ?? "") ?? -1
        let duplicates = try count("SELECT count(*) FROM audit_dead_letter WHERE sqlstate = '23505'")
        return stored + dead == lines && duplicates == 0
    }
}

/// Writes sample events to a temporary NDJSON file; returns its path and line count.
/// `seed` picks the events; their tenants are the fixture's (seed 42) unless `tenantSeed` says.
func sampleFile(events: Int, tenants: Int = 6, months: Int = 3, invalidRatio: Double = 0, seed: UInt64 = 42,
                tenantSeed: UInt64? = nil, endMonth: Month? = nil, extraLines: [String] = []) throws -> (path: String, lines: Int) {
    // nil endMonth: the latest month with days that lie wholly in the past (SampleEvents).
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("events-\(UUID()).ndjson").path
    var text = ""
    for event in SampleEvents(.init(count: events, tenants: tenants, months: months, endMonth: endMonth, invalidRatio: invalidRatio, seed: seed,
                                      tenantSeed: tenantSeed ?? seed)) {
        text += SampleEvents.ndjson(event) + "\n"
    }
    for line in extraLines { text += line + "\n" }
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return (path, events + extraLines.count)
}

/// Where line `line` (from 0) of a file starts: a file position is a byte offset.
func byteOffset(ofLine line: Int, in path: String) throws -> Int {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    var seen = 0
    for (index, byte) in bytes.enumerated() where byte == 0x0A {
        seen += 1
        if seen == line { return index + 1 }
    }
    return line == 0 ? 0 : -1
}
