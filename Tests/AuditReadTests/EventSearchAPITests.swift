import Foundation
import Postgres
import TestSupport
import Testing

/// `GET /v1/tenants/{id}/events` against `audit-ingest admin serve` and a real PostgreSQL.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EventSearchAPITests {
    typealias Event = ReadFixture.Event

    /// Events of tenant A that differ in every filtered field, and look-alikes in tenant B.
    static let userX = "00000000-0000-4000-8000-0000000000aa"
    static let events: [Event] = [
        Event(user: userX, action: "user.login", resourceType: "session", resourceID: "s-1", severity: "INFO",
              timestamp: "2026-01-15T10:00:00Z", metadata: #"{"region": "eu", "mfa": true}"#),
        Event(user: userX, action: "user.logout", resourceType: "session", resourceID: "s-1", severity: "DEBUG",
              timestamp: "2026-02-01T00:00:00Z", metadata: #"{"region": "us"}"#),
        Event(action: "item.delete", resourceType: "document", resourceID: "d-9", severity: "ERROR",
              timestamp: "2026-02-14T12:30:00.123456Z", metadata: #"{"region": "eu", "tags": ["legal", "hold"]}"#),
        Event(action: "item.delete", resourceType: "document", resourceID: "d-7", severity: "CRITICAL",
              timestamp: "2026-03-01T00:00:00Z"),
        Event(action: "role.grant", resourceType: "role", resourceID: "admin", severity: "WARNING",
              timestamp: "2026-03-31T23:59:59.999999Z", metadata: #"{"region": "eu", "by": {"id": 7}}"#),
        Event(tenant: ReadFixture.tenantB, user: userX, action: "user.login", resourceType: "session", resourceID: "s-1",
              severity: "CRITICAL", timestamp: "2026-02-01T00:00:00Z", metadata: #"{"region": "eu"}"#),
    ]

    @Test func eachFilterSelectsExactlyTheMatchingEvents() throws {
        let fixture = try ReadFixture()
        try fixture.insert(Self.events)
        let server = try fixture.startServer()
        defer { server.stop() }
        let a = Self.events.filter { $0.tenant == ReadFixture.tenantA }
        func ids(_ query: String) throws -> Set<String> {
            let reply = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events?\(query)", token: ReadFixture.adminToken)
            #expect(reply.status == 200, "\(query): \(reply.body)")
            return Set(reply.ids)
        }
        func expected(_ keep: (Event) -> Bool) -> Set<String> { Set(a.filter(keep).map(\.id)) }
        #expect(try ids("") == expected { _ in true })
        #expect(try ids("since=\(q("2026-02-01T00:00:00Z"))") == expected { $0.timestamp >= "2026-02-01" })
        #expect(try ids("until=\(q("2026-02-01T00:00:00Z"))") == expected { $0.timestamp < "2026-02-01" })
        #expect(try ids("since=\(q("2026-02-01T01:00:00+01:00"))&until=\(q("2026-03-01T00:00:00Z"))")
                == expected { $0.timestamp >= "2026-02-01" && $0.timestamp < "2026-03-01" })
        #expect(try ids("action=item.delete") == expected { $0.action == "item.delete" })
        #expect(try ids("user_id=\(Self.userX.uppercased())") == expected { $0.user == Self.userX })
        #expect(try ids("resource_type=document") == expected { $0.resourceType == "document" })
        #expect(try ids("resource_id=d-9") == expected { $0.resourceID == "d-9" })
        #expect(try ids("severity=warning") == expected { ["WARNING", "ERROR", "CRITICAL"].contains($0.severity) })
        #expect(try ids("severity=CRITICAL") == expected { $0.severity == "CRITICAL" })
        #expect(try ids("severity=DEBUG") == expected { _ in true })
        #expect(try ids("metadata=\(q(#"{"region":"eu"}"#))") == expected { $0.metadata?.contains(#""region": "eu""#) == true })
        #expect(try ids("metadata=\(q(#"{"tags":["hold"]}"#))") == expected { $0.resourceID == "d-9" })
        #expect(try ids("metadata=\(q(#"{"by":{"id":7}}"#))") == expected { $0.action == "role.grant" })
        #expect(try ids("action=item.delete&severity=ERROR&metadata=\(q(#"{"region":"eu"}"#))") == expected { $0.resourceID == "d-9" })
        #expect(try ids("action=nothing.like.this").isEmpty)
    }

    @Test func eventsCarryTheWireContractFieldsAndIngestedAt() throws {
        let fixture = try ReadFixture()
        try fixture.insert(Self.events)
        try fixture.owner.execute("UPDATE audit_log SET ip_address = '2001:db8::1', user_agent = 'curl/8' WHERE resource_id = 'd-9'")
        let server = try fixture.startServer()
        defer { server.stop() }
        let reply = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events?resource_id=d-9", token: ReadFixture.adminToken)
        let event = try #require(reply.events.first)
        #expect(Set(event.keys) == ["id", "tenant_id", "user_id", "action", "resource_type", "resource_id", "severity",
                                    "timestamp", "ip_address", "user_agent", "metadata", "ingested_at"])
        #expect(event["id"] as? String == Self.events[2].id)
        #expect(event["tenant_id"] as? String == ReadFixture.tenantA)
        #expect(event["user_id"] is NSNull)
        #expect(event["timestamp"] as? String == "2026-02-14T12:30:00.123456Z")
        #expect(event["ip_address"] as? String == "2001:db8::1")
        #expect(event["user_agent"] as? String == "curl/8")
        #expect((event["metadata"] as? [String: Any])?["tags"] as? [String] == ["legal", "hold"])
        let ingestedAt = try #require(event["ingested_at"] as? String)
        #expect(ISO8601DateFormatter().date(from: ingestedAt.replacingOccurrences(of: #"\.\d+"#, with: "", options: .regularExpression)) != nil)
        #expect(reply.nextCursor == nil)
    }

    /// Pages of 7 over 240 events with many equal timestamps, in both orders: the pages put
    /// together are exactly the tenant's events in order, with nothing repeated or left out, even
    /// when events arrive between pages.
    @Test func pagesInBothOrdersHaveNoGapsOrRepeats() throws {
        let fixture = try ReadFixture()
        let tied = (0..<240).map { Event(action: "a.\($0 % 3)", timestamp: "2026-04-0\(1 + $0 % 4)T10:00:0\($0 % 6)Z") }
        try fixture.insert(tied)
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 50)
        let server = try fixture.startServer()
        defer { server.stop() }
        for order in ["desc", "asc"] {
            let expected = try fixture.owner.execute("""
                SELECT id::text FROM audit_log WHERE tenant_id = '\(ReadFixture.tenantA)' AND "timestamp" < '2026-05-01'
                ORDER BY "timestamp" \(order), id \(order)
                """).rows.map { $0[0]! }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let path = "/v1/tenants/\(ReadFixture.tenantA)/events?limit=7&until=\(q("2026-05-01T00:00:00Z"))"
                    + (order == "asc" ? "&order=asc" : "") + (cursor.map { "&cursor=\(q($0))" } ?? "")
                let reply = try server.request(path, token: ReadFixture.adminToken)
                #expect(reply.status == 200, "\(reply.body)")
                #expect(reply.ids.count == 7 || reply.nextCursor == nil)
                seen += reply.ids
                cursor = reply.nextCursor
                // Events written meanwhile on either side of the cursor change nothing already paged.
                if seen.count == 70 { try fixture.insert([Event(timestamp: "2026-04-02T10:00:03Z"), Event(timestamp: "2026-06-01T00:00:00Z")]) }
            } while cursor != nil && seen.count < 1000
            let settled = Set(seen)
            #expect(settled.count == seen.count, "\(order): repeated events")
            #expect(seen.filter { expected.contains($0) } == expected, "\(order): gaps or wrong order")
            #expect(seen.count - expected.count <= 1, "\(order): only the event written into the unread range may join")
        }
    }
}
