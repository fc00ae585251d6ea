import AuditRead
import Foundation
import Postgres
import TestSupport
import Testing

/// Row-level security, not the queries' own filters, keeps tenants apart in a read session.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ReaderSessionTests {
    @Test func aQueryWithoutATenantFilterSeesOnlyTheSessionsTenant() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 40)
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 25)
        let connection = try PostgresConnection(fixture.url)
        let seen = try ReaderSession.run(tenantID: ReadFixture.tenantB, on: connection) { reader in
            (try reader.execute("SELECT count(*) FROM audit_log").scalar,
             try reader.execute("SELECT string_agg(DISTINCT tenant_id::text, ',') FROM audit_log").scalar,
             try reader.execute("SELECT string_agg(id::text, ',') FROM tenant").scalar,
             try reader.execute("SELECT current_user").scalar)
        }
        #expect(seen.0 == "25")
        #expect(seen.1 == ReadFixture.tenantB)
        #expect(seen.2 == ReadFixture.tenantB)
        #expect(seen.3 == "audit_reader")
        // SET LOCAL: the role and the tenant end with the transaction.
        #expect(try connection.execute("SELECT current_user").scalar == "postgres")
        #expect(try connection.execute("SELECT coalesce(current_setting('app.tenant_id', true), '')").scalar == "")
        #expect(try connection.execute("SELECT count(*) FROM audit_log").scalar == "65")
    }

    @Test func theReaderCannotReadTokensOrTheCursorKeyOrWrite() throws {
        let fixture = try ReadFixture()
        let connection = try PostgresConnection(fixture.url)
        for statement in ["SELECT * FROM tenant_api_token", "SELECT * FROM read_cursor_key"] {
            #expect(throws: PostgresError.self, "\(statement)") {
                try ReaderSession.run(tenantID: ReadFixture.tenantA, on: connection) { try $0.execute(statement) }
            }
        }
        #expect(throws: PostgresError.self) {
            try ReaderSession.run(tenantID: ReadFixture.tenantA, on: connection) {
                try $0.execute("DELETE FROM audit_log")
            }
        }
        #expect(throws: ReadError(kind: .unknownTenant, message: "no tenant \(ReadFixture.unknownTenant)")) {
            try ReaderSession.run(tenantID: ReadFixture.unknownTenant, on: connection) { _ in }
        }
    }
}
