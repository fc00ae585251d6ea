import Foundation
import Postgres
import TestSupport
import Testing

/// Tenant tokens are served only over a login of the read API's own: a member of `audit_api`
/// that could not do more than read if a request ever escaped `audit_reader`.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReadLoginTests {
    static let events = "/v1/tenants/\(ReadFixture.tenantA)/events?limit=5"

    @Test func tenantTokensAreRefusedOverTheSuperuserAndServedOverTheReadLogin() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 10)
        let token = try fixture.createToken(tenant: ReadFixture.tenantA)

        // The operator's login (here the superuser) for everything: the admin token still reads.
        let owner = try AdminServerProcess.start(databaseURL: fixture.url, token: ReadFixture.adminToken, ownReadLogin: false)
        let refused = try owner.request(Self.events, token: token)
        #expect(refused.status == 503, "\(refused.body)")
        #expect(refused.body.contains("does not serve tenant tokens"), "\(refused.body)")
        #expect(!refused.body.contains("postgres"), "the tenant is not told the login: \(refused.body)")
        #expect(try owner.request("/v1/checkpoint", token: token).status == 503)
        #expect(try owner.request(Self.events, token: ReadFixture.adminToken).status == 200)
        let log = owner.stop()
        #expect(log.contains("tenant tokens are refused (503): the read API's login postgres is a superuser"), "\(log)")
        #expect(log.components(separatedBy: "tenant tokens are refused").count == 2, "logged once: \(log)")

        // Its own login: served, and its connections are that login's.
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: ReadFixture.adminToken)
        defer { server.stop() }
        let served = try server.request(Self.events, token: token)
        #expect(served.status == 200, "\(served.body)")
        #expect(served.ids.count == 5)
        let logins = try fixture.owner.execute("""
            SELECT DISTINCT usename FROM pg_stat_activity
            WHERE application_name = 'audit-ingest read API' AND datname = current_database()
            """).rows.compactMap { $0[0] }
        #expect(logins == [TestDatabase.readAPILogin])
    }

    @Test func anIngestLoginOrOneThatMayWriteIsRefusedAndTheFlagServesAnyway() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 10)
        let token = try fixture.createToken(tenant: ReadFixture.tenantA)
        let name = "read_login_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10).lowercased())"
        try fixture.owner.execute("CREATE ROLE \(name) LOGIN IN ROLE audit_api, audit_ingest")
        defer { _ = try? fixture.owner.execute("DROP OWNED BY \(name); DROP ROLE IF EXISTS \(name)") }
        let readURL = TestDatabase.url(fixture.url, user: name)

        let (ingest, ingestLog) = try Self.tenantRead(fixture, token: token, arguments: ["--read-database-url", readURL])
        #expect(ingest == 503)
        #expect(ingestLog.contains("login \(name) is a member of audit_ingest"), "\(ingestLog)")

        try fixture.owner.execute("REVOKE audit_ingest FROM \(name); GRANT UPDATE ON audit_log TO \(name)")
        let (writer, writerLog) = try Self.tenantRead(fixture, token: token, arguments: ["--read-database-url", readURL])
        #expect(writer == 503)
        #expect(writerLog.contains("login \(name) may write audit_log"), "\(writerLog)")

        let (allowed, allowedLog) = try Self.tenantRead(fixture, token: token, arguments: ["--allow-privileged-read-login"])
        #expect(allowed == 200)
        #expect(allowedLog.contains("tenant tokens are served over the login postgres, which is a superuser"), "\(allowedLog)")
    }

    /// A search with `token` on a server started with `arguments` (and no read login of the
    /// tests' own): the status and what the server logged.
    static func tenantRead(_ fixture: ReadFixture, token: String, arguments: [String]) throws -> (Int, String) {
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: ReadFixture.adminToken,
                                                  extraArguments: arguments, ownReadLogin: false)
        let status = try server.request(events, token: token).status
        return (status, server.stop())
    }
}
