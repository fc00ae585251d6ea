import Foundation
import Postgres
import TestSupport
import Testing

/// Every refusal of the read API: 400 naming the parameter, 401, 403, 404; and tenant tokens.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReadAccessAPITests {
    static let a = "/v1/tenants/\(ReadFixture.tenantA)"
    static let b = "/v1/tenants/\(ReadFixture.tenantB)"

    @Test func badParametersAnswer400NamingTheParameter() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 30)
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 30)
        let server = try fixture.startServer()
        defer { server.stop() }
        let token = ReadFixture.adminToken
        let cursorA = try #require(try server.request("\(Self.a)/events?limit=2", token: token).nextCursor)
        let cursorB = try #require(try server.request("\(Self.b)/events?limit=2", token: token).nextCursor)
        let ascA = try #require(try server.request("\(Self.a)/events?limit=2&order=asc", token: token).nextCursor)
        let feedA = try #require(try Self.firstFeedCursor(server, path: "\(Self.a)/feed?limit=2", token: token))
        var tampered = Array(cursorA)
        tampered[10] = tampered[10] == "A" ? "B" : "A"
        let cases: [(String, String)] = [
            ("\(Self.a)/events?since=yesterday", "since"),
            ("\(Self.a)/events?until=\(q("2026-03-01T00:00:00"))", "until"),  // no offset
            ("\(Self.a)/events?since=\(q("2026-02-30T00:00:00Z"))", "since"),
            ("\(Self.a)/events?severity=LOUD", "severity"),
            ("\(Self.a)/events?limit=0", "limit"),
            ("\(Self.a)/events?limit=1001", "limit"),
            ("\(Self.a)/events?limit=ten", "limit"),
            ("\(Self.a)/events?metadata=\(q("[1,2]"))", "metadata"),
            ("\(Self.a)/events?metadata=\(q("\"eu\""))", "metadata"),
            ("\(Self.a)/events?metadata=\(q("{\"region\":"))", "metadata"),
            ("\(Self.a)/events?user_id=bob", "user_id"),
            ("\(Self.a)/events?order=sideways", "order"),
            ("\(Self.a)/events?sevirity=ERROR", "sevirity"),
            ("\(Self.a)/events?action=x&action=y", "action"),
            ("\(Self.a)/events?cursor=\(q(String(tampered)))", "cursor"),
            ("\(Self.a)/events?cursor=\(q(String(cursorA.dropLast(3))))", "cursor"),
            ("\(Self.a)/events?cursor=not-a-cursor", "cursor"),
            ("\(Self.a)/events?cursor=\(q(cursorB))", "cursor"),  // another tenant's
            ("\(Self.a)/events?cursor=\(q(ascA))", "cursor"),  // another order's
            ("\(Self.a)/feed?after=\(q(cursorA))", "after"),  // a search cursor
            ("\(Self.a)/events?cursor=\(q(feedA))", "cursor"),
            ("\(Self.a)/feed?limit=5000", "limit"),
            ("\(Self.a)/events/export?format=xml", "format"),
            ("\(Self.a)/events/export?since=soon", "since"),
            ("/v1/tenants/acme/events", "tenant_id"),
        ]
        for (path, parameter) in cases {
            let reply = try server.request(path, token: token)
            #expect(reply.status == 400, "\(path): \(reply.status) \(reply.body)")
            #expect(reply.json?["parameter"] as? String == parameter, "\(path): \(reply.body)")
            #expect((reply.json?["error"] as? String)?.hasPrefix(parameter + ":") == true, "\(path): \(reply.body)")
        }
        let foreign = try server.request("\(Self.a)/events?cursor=\(q(cursorB))", token: token)
        #expect(foreign.body.contains("another tenant"))
        #expect(try server.request("\(Self.a)/events?cursor=\(q(cursorA))", token: token).status == 200)
    }

    /// The feed's first cursor. Polls: the feed holds rows back while any older transaction runs
    /// on the cluster (other test suites' too).
    static func firstFeedCursor(_ server: AdminServerProcess, path: String, token: String) throws -> String? {
        var cursor: String?
        waitUntil { cursor = try server.request(path, token: token).nextCursor; return cursor != nil }
        return cursor
    }

    @Test func tokensDecideWhoReadsWhichTenant() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 20)
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 20)
        let tokenA = try fixture.createToken(tenant: ReadFixture.tenantA, name: "siem")
        let server = try fixture.startServer()
        defer { server.stop() }
        let endpoints = ["/events", "/events/export", "/feed"]
        for endpoint in endpoints {
            let own = try server.request(Self.a + endpoint, token: tokenA)
            #expect(own.status == 200, "\(endpoint): \(own.body)")
            #expect(own.body.contains(ReadFixture.tenantA) && !own.body.contains(ReadFixture.tenantB))
            let other = try server.request(Self.b + endpoint, token: tokenA)
            #expect(other.status == 403, "\(endpoint): \(other.body)")
            #expect(!other.body.contains("action."), "no data of tenant B: \(other.body)")
            #expect(try server.request("/v1/tenants/\(ReadFixture.unknownTenant)\(endpoint)", token: tokenA).status == 403)
            #expect(try server.request(Self.b + endpoint, token: ReadFixture.adminToken).status == 200)
            let unknown = try server.request("/v1/tenants/\(ReadFixture.unknownTenant)\(endpoint)", token: ReadFixture.adminToken)
            #expect(unknown.status == 404, "\(endpoint): \(unknown.body)")
            let altered = String(tokenA.dropLast()) + (tokenA.hasSuffix("0") ? "1" : "0")
            for bad in [nil, "", "wrong", altered, ReadFixture.adminToken + "x"] as [String?] {
                let reply = try server.request(Self.a + endpoint, token: bad)
                #expect(reply.status == 401, "\(endpoint) with \(bad ?? "no token"): \(reply.status)")
                #expect(reply.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            }
            let basic = try server.request(Self.a + endpoint, headers: ["Authorization: Basic YWRtaW46YWRtaW4="])
            #expect(basic.status == 401)
        }
        // Tenant tokens work without an admin token too; the admin token reads no /utils path as a tenant token does.
        #expect(try server.request("/utils/db/stats", token: tokenA).status == 401)

        let listed = try fixture.cli(["tenant", "token", "list", "--tenant", ReadFixture.tenantA])
        #expect(listed.exitCode == 0 && listed.output.contains("\"siem\""))
        #expect(!listed.output.contains(String(tokenA.dropFirst(4).prefix(16))), "the token never shows again")
        let stored = try fixture.owner.execute("SELECT id::text, token_hash FROM tenant_api_token").rows
        #expect(stored.count == 1 && stored[0][1] != tokenA && !stored[0][1]!.contains(tokenA.dropFirst(4)))
        let revoke = try fixture.cli(["tenant", "token", "revoke", stored[0][0]!])
        #expect(revoke.exitCode == 0, "\(revoke.output)")
        #expect(try server.request(Self.a + "/events", token: tokenA).status == 401)
        #expect(try fixture.cli(["tenant", "token", "revoke", stored[0][0]!]).exitCode == 2)
        #expect(try fixture.cli(["tenant", "token", "create", "--tenant", ReadFixture.unknownTenant]).exitCode == 2)
        #expect(!server.child.outputSoFar.contains(tokenA), "tokens never reach the log")
    }

    @Test func withoutAnAdminTokenTenantTokensStillRead() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 3)
        let tokenA = try fixture.createToken(tenant: ReadFixture.tenantA)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: nil)
        defer { server.stop() }
        #expect(try server.request(Self.a + "/events", token: tokenA).ids.count == 3)
        #expect(try server.request(Self.a + "/events", token: "").status == 401)
        #expect(try server.request("/utils/db/health", token: tokenA).status == 401)
    }
}
