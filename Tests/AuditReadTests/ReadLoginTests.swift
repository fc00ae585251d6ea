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
        // And none over the operator's login: the requests did not run on the main pool.
        let exported = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/export", token: token)
        #expect(exported.status == 200 && exported.body.split(separator: "\n").count == 10, "\(exported.body)")
        let mainLogins = try fixture.owner.execute("""
            SELECT count(*) FROM pg_stat_activity
            WHERE usename = current_user AND datname = current_database() AND pid <> pg_backend_pid()
            """).scalar
        #expect(mainLogins == "0")
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
        #expect(ingestLog.contains("login \(name) has BYPASSRLS (or may take a role that has it)"), "\(ingestLog)")  // audit_ingest has it

        try fixture.owner.execute("REVOKE audit_ingest FROM \(name); GRANT UPDATE ON tenant_api_token TO \(name)")
        let (writer, writerLog) = try Self.tenantRead(fixture, token: token, arguments: ["--read-database-url", readURL])
        #expect(writer == 503)
        #expect(writerLog.contains("login \(name) may write audit_log or other tables"), "\(writerLog)")

        try fixture.owner.execute("REVOKE UPDATE ON tenant_api_token FROM \(name); REVOKE audit_api FROM \(name); GRANT audit_reader TO \(name)")
        let (reader, readerLog) = try Self.tenantRead(fixture, token: token, arguments: ["--read-database-url", readURL])
        #expect(reader == 503)
        #expect(readerLog.contains("login \(name) is not a member of audit_api"), "\(readerLog)")

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
