import Foundation
import Postgres
import TestSupport
import Testing

/// `GET /v1/tenants/{id}/events/export` and `audit-ingest events export`.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EventExportAPITests {
    static let yearOfEvents = 75_000  // one every 7 minutes: all of 2026

    @Test func exportStreamsAYearOfOneTenantAsNDJSONAndCSV() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: Self.yearOfEvents)
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 1_000)
        let server = try fixture.startServer()
        defer { server.stop() }

        let ndjson = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/export?format=ndjson", token: ReadFixture.adminToken)
        #expect(ndjson.status == 200)
        #expect(ndjson.headers["transfer-encoding"] == "chunked")
        #expect(ndjson.headers["content-type"] == "application/x-ndjson")
        let lines = ndjson.body.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == Self.yearOfEvents)
        var ids = Set<String>()
        var previous = ""
        for line in lines {
            let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            ids.insert(event["id"] as? String ?? "")
            let timestamp = event["timestamp"] as? String ?? ""
            #expect(timestamp >= previous && event["tenant_id"] as? String == ReadFixture.tenantA)
            previous = timestamp
        }
        #expect(ids.count == Self.yearOfEvents)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect((first["metadata"] as? [String: Any])?["note"] as? String == "line\nbreak, \"quoted\"")
        #expect(first["user_agent"] as? String == "test/1.0" && first["ip_address"] as? String == "10.0.0.1")
        #expect(first["resource_id"] as? String == "doc-1" && first["user_id"] is String)

        let march = "since=\(q("2026-03-01T00:00:00Z"))&until=\(q("2026-04-01T00:00:00Z"))&severity=ERROR"
        let csv = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/export?format=csv&\(march)", token: ReadFixture.adminToken)
        #expect(csv.status == 200)
        let expected = try fixture.owner.execute("""
            SELECT count(*) FROM audit_log WHERE tenant_id = '\(ReadFixture.tenantA)' AND "timestamp" >= '2026-03-01Z'
            AND "timestamp" < '2026-04-01Z' AND severity IN ('ERROR', 'CRITICAL')
            """).scalar
        #expect(csv.body.hasPrefix("id,tenant_id,user_id,action,resource_type,resource_id,severity,timestamp,ip_address,user_agent,metadata,ingested_at\n"))
        // The line break in the metadata is escaped inside its JSON: one line per row.
        #expect(String(csv.body.split(separator: "\n").count - 1) == expected)
    }

    @Test func cliExportWritesTheFileAndSearchPrintsEachFormat() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 3_000)
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 10)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString).ndjson").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(FileManager.default.createFile(atPath: file, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644]))
        let export = try fixture.cli(["events", "export", "--tenant", ReadFixture.tenantA, "--action", "action.1", "-o", file])
        #expect(export.exitCode == 0, "\(export.output)")
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600, "a tenant's events: the owner's only, also over a wider file that was there")
        #expect(export.output.contains("exported 600 event(s)"))
        let written = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(written.count == 600)
        #expect(written.allSatisfy { $0.contains(#""action":"action.1""#) })

        let table = try fixture.cli(["events", "search", "--tenant", ReadFixture.tenantA, "--limit", "5", "--severity", "critical"])
        #expect(table.exitCode == 0, "\(table.output)")
        // (Standard error, with the next page's cursor, is interleaved with the output here.)
        #expect(table.output.contains("timestamp                    severity  action"))
        #expect(table.output.components(separatedBy: "CRITICAL").count - 1 == 5)
        #expect(table.output.contains("next page: --cursor "))
        let ndjson = try fixture.cli(["events", "search", "--tenant", ReadFixture.tenantA, "--limit", "3", "--format", "ndjson"])
        #expect(ndjson.output.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 3)
        let csv = try fixture.cli(["events", "search", "--tenant", ReadFixture.tenantA, "--limit", "2", "--format", "csv",
                                   "--order", "asc"])
        #expect(csv.output.contains("id,tenant_id,user_id,"))
        #expect(csv.output.contains("2026-01-01T00:07:00.000000Z"))

        let bad = try fixture.cli(["events", "search", "--tenant", ReadFixture.tenantA, "--since", "last week"])
        #expect(bad.exitCode == 64)
        #expect(bad.output.contains("since: last week is not an RFC 3339 date-time"))
        let unknown = try fixture.cli(["events", "search", "--tenant", ReadFixture.unknownTenant])
        #expect(unknown.exitCode == 2)
        #expect(unknown.output.contains("no tenant \(ReadFixture.unknownTenant)"))
    }
}
