import AuditRead
import Foundation
import Postgres
import TestSupport
import Testing

/// A feed page's cost follows ingest order: it scans the months its tenant wrote to since its
/// cursor (migration 0023), not every month another tenant's timestamps spread over.
extension EventFeedTests {
    /// The month partitions the page's plan reads (EXPLAIN of the feed's own statement).
    func partitionsScanned(by poller: Poller) throws -> Set<String> {
        var parameters = ["limit": "1000"]
        parameters["after"] = poller.cursor
        let feed = try EventFeed(tenantID: poller.tenant, parameters: parameters, signer: poller.signer)
        return try ReaderSession.run(tenantID: poller.tenant, on: poller.connection) { connection in
            guard let statement = try feed.statement(on: connection) else { return [] }
            let plan = try connection.query("EXPLAIN " + statement.sql, statement.parameters).rows.compactMap { $0[0] }.joined(separator: "\n")
            let names = try Regex(#"audit_log_\d{4}_\d{2}"#)
            return Set(plan.matches(of: names).map { String(plan[$0.range]) })
        }
    }

    @Test func aPageScansOnlyTheMonthsItsTenantWroteToSinceItsCursor() throws {
        let fixture = try ReadFixture()
        // Tenant B spreads its events over five years, one month per transaction: 60 partitions.
        let spread = (2020...2024).flatMap { year in (1...12).map { String(format: "%04d-%02d", year, $0) } }
        for month in spread {
            try fixture.owner.execute("SELECT ensure_month_partitions('\(month)-01')")
            try fixture.insert([Event(tenant: ReadFixture.tenantB, timestamp: "\(month)-15T12:00:00Z")])
        }
        try fixture.insert([Event(timestamp: "2026-06-01T00:00:00Z")])

        // Tenant A's pages read A's one month, whatever B did.
        let a = try Poller(url: fixture.url, tenant: ReadFixture.tenantA)
        #expect(try partitionsScanned(by: a) == ["audit_log_2026_06"])
        try a.pollUntil(count: 1)
        #expect(try partitionsScanned(by: a) == ["audit_log_2026_06"])

        // B's first page reads its 60 months; once caught up, only the month of its last write.
        let b = try Poller(url: fixture.url, tenant: ReadFixture.tenantB)
        #expect(try partitionsScanned(by: b).count == 60)
        try b.pollUntil(count: 60)
        #expect(try partitionsScanned(by: b) == ["audit_log_2024_12"])

        // A late event in an old month is scanned for, and delivered, on B's next page.
        let late = Event(tenant: ReadFixture.tenantB, timestamp: "2021-03-02T00:00:00Z")
        try fixture.insert([late])
        #expect(try partitionsScanned(by: b) == ["audit_log_2021_03", "audit_log_2024_12"])
        try b.pollUntil(count: 61)
        #expect(b.seen.last == late.id)

        // Compacted to the newest record of each month, the pages read the same months.
        let later = Event(tenant: ReadFixture.tenantB, timestamp: "2022-05-02T00:00:00Z")
        try fixture.insert([later])
        #expect(try fixture.owner.execute("SELECT compact_tenant_feed_months()").scalar == "2")  // 2021-03 and 2022-05 had two
        #expect(try fixture.owner.execute("SELECT count(*) FROM tenant_feed_month WHERE tenant_id = '\(ReadFixture.tenantB)'").scalar == "60")
        #expect(try partitionsScanned(by: b) == ["audit_log_2021_03", "audit_log_2022_05"])
        try b.pollUntil(count: 62)
        #expect(b.seen.last == later.id)
    }
}
