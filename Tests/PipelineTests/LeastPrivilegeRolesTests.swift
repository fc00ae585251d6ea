import Foundation
import Operations
import Pipeline
import Postgres
import TestSupport
import Testing
import SampleData

/// The roles as an operator sets them up (docs/security.md): `migrate` as a superuser, then
/// fresh LOGIN roles granted audit_ingest and audit_reader, each doing its job and refused the
/// rest; and an owner that is not a superuser, whose own sessions obey the forced row-level
/// security while its ingest still works.
@Suite(.serialized, .timeLimit(.minutes(3))) struct LeastPrivilegeRolesTests {
    let binary = Shell.executable(named: "audit-ingest")

    @Test func loginRoleGrantedAuditIngestBackfillsNewMonthsAndNothingElse() throws {
        let fixture = try PipelineFixture()
        let ingest = try LoginRole(granted: "audit_ingest", on: fixture.connection)
        defer { ingest.drop(on: fixture.connection) }
        #expect(try fixture.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass") == 0)

        let file = try sampleFile(events: 400, months: 3)
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", ingest.url(fixture.url), file.path])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 400)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 0, "every tenant is registered")
        #expect(try fixture.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass") == 3)
        #expect(try fixture.count("SELECT sum(audit_log_count) FROM tenant_metrics") == 400)

        // consume's rollup service, as the same role (what --database-role auto does).
        let asIngest = PostgresConfiguration(connectionString: ConnectionString(ingest.url(fixture.url)),
                                             sessionSetup: "SET ROLE audit_ingest")
        try MetricsRollupService(database: asIngest, interval: .seconds(60), stop: StopSignal()).runOnce()
        #expect(try fixture.count("SELECT count(*) FROM tenant_metrics WHERE \"date\" = (now() AT TIME ZONE 'UTC')::date") == 6)

        let session = try PostgresConnection(ingest.url(fixture.url))
        defer { session.close() }
        for sql in [
            "INSERT INTO tenant (name, code) VALUES ('Evil', 'evil')",
            "UPDATE tenant SET name = 'x'",
            "SELECT count(*) FROM tenant",
            "SELECT count(*) FROM audit_log",
            "SELECT count(*) FROM audit_dead_letter",
            "DELETE FROM audit_log",
            "CREATE TABLE audit_log_2030_01 (x int)",
        ] {
            #expect(refusal(sql, on: session) == "42501", "\(sql)")
        }
        try session.execute("SET ROLE audit_ingest")  // what audit-ingest does: still nothing more
        #expect(refusal("INSERT INTO tenant (name, code) VALUES ('Evil', 'evil')", on: session) == "42501")
        #expect(refusal("SELECT count(*) FROM audit_dead_letter", on: session) == "42501")
        #expect(refusal("SELECT count(*) FROM \"user\"", on: session) == "42501")
    }

    @Test func loginRoleGrantedAuditReaderSeesOnlyItsTenant() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 300)
        #expect(try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, file.path]).exitCode == 0)
        try fixture.connection.execute("INSERT INTO audit_dead_letter (source, \"partition\", \"offset\", reason) VALUES ('s', 0, 1, 'r')")
        let tenants = try fixture.connection.execute("SELECT tenant_id, count(*) FROM audit_log GROUP BY 1 ORDER BY 2 DESC").rows
        let (mine, mineCount, other) = (tenants[0][0]!, Int(tenants[0][1]!)!, tenants[1][0]!)

        // An application login (audit_api: it authenticates tenants itself) acts for the tenant it sets.
        let reader = try LoginRole(granted: "audit_api", on: fixture.connection)
        defer { reader.drop(on: fixture.connection) }
        let session = try PostgresConnection(reader.url(fixture.url))
        defer { session.close() }
        #expect(try session.execute("SELECT count(*) FROM audit_log").scalar == "0", "no tenant set: no rows")
        try session.query("SELECT set_config('app.tenant_id', $1, false)", [mine])
        #expect(try session.execute("SELECT count(*) FROM audit_log").scalar == "\(mineCount)")
        #expect(try session.execute("SELECT count(DISTINCT tenant_id) FROM audit_log").scalar == "1")
        #expect(try session.query("SELECT count(*) FROM audit_log WHERE tenant_id = $1", [other]).scalar == "0")
        #expect(try session.execute("SELECT count(*) FROM tenant").scalar == "1")
        #expect(try session.query("SELECT count(*) FROM tenant_metrics WHERE tenant_id = $1", [other]).scalar == "0")
        for sql in [
            "SELECT count(*) FROM audit_dead_letter",
            "SELECT count(*) FROM ingest_offsets",
            "INSERT INTO tenant (name, code) VALUES ('Evil', 'evil')",
            "INSERT INTO audit_log (id, tenant_id, action, severity, \"timestamp\") VALUES (gen_random_uuid(), '\(mine)', 'x', 'INFO', '2026-10-01Z')",
            "SELECT ensure_month_partitions('2031-01-01')",
            "SELECT count(*) FROM ingest_tenant_ids()",
        ] {
            #expect(refusal(sql, on: session) == "42501", "\(sql)")
        }
    }

    @Test func ownerThatIsNotASuperuserIngestsAndItsReportSeesOneTenant() throws {
        let superuser = try PostgresConnection(try TestDatabase.baseURL())
        defer { superuser.close() }
        let owner = try LoginRole(granted: nil, attributes: "CREATEROLE", on: superuser)  // 0004 creates the roles if missing
        defer { owner.drop(on: superuser, databases: true) }
        let database = "owned_\(owner.name)"
        try superuser.execute("CREATE DATABASE \(database) OWNER \(owner.name)")
        let url = owner.url(TestDatabase.url(try TestDatabase.baseURL(), database: database))
        let migrate = try Shell.run(binary, ["migrate", "--database-url", url, "--migrations-dir", TestDatabase.migrationsDirectory.path])
        #expect(migrate.exitCode == 0, "\(migrate.output)")

        let session = try PostgresConnection(url)
        defer { session.close() }
        let tenantIDs = SampleEvents.tenantIDs(count: 6, seed: 42)
        #expect(refusal("INSERT INTO tenant (id, name, code) VALUES ('\(tenantIDs[0])', 'T', 't0')", on: session) == "42501",
                "forced: the owner must say for which tenant, or enter the system scope")
        try session.transaction { session in
            try session.execute("SET LOCAL audit.scope = 'system'")
            for (index, id) in tenantIDs.enumerated() {
                try session.query("INSERT INTO tenant (id, name, code) VALUES ($1, $2, $3)", [id, "Tenant \(index)", "t\(index)"])
            }
        }
        #expect(try session.execute("SELECT count(*) FROM tenant").scalar == "0", "the owner's own session sees no tenant")

        let file = try sampleFile(events: 200)
        let backfill = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", url, file.path])
        #expect(backfill.exitCode == 0, "\(backfill.output)")
        #expect(try session.execute("SELECT count(*) FROM audit_log").scalar == "200")
        #expect(try session.execute("SELECT count(*) FROM audit_dead_letter").scalar == "0")

        let report = try Shell.run(binary, ["tenant", "report", "--database-url", url, tenantIDs[0]])
        #expect(report.exitCode == 0, "\(report.output)")
        #expect(report.output.contains("\"code\" : \"t0\""))
        let rollup = try Shell.run(binary, ["metrics", "rollup", "--database-url", url])
        #expect(rollup.output.contains("rolled up 6 tenant(s)"), "\(rollup.output)")
    }

    /// The SQLSTATE with which the server refuses `sql`, or nil when it runs.
    func refusal(_ sql: String, on session: PostgresConnection) -> String? {
        do {
            try session.execute(sql)
            return nil
        } catch let error as PostgresError {
            return error.sqlState ?? "\(error)"
        } catch {
            return "\(error)"
        }
    }
}

/// A LOGIN role of a test's own (roles are cluster-wide: unique names), trusted by the throwaway
/// cluster's pg_hba, optionally granted a group role.
struct LoginRole {
    let name: String

    /// An existing role by name (one renamed by a test).
    init(name: String) { self.name = name }

    init(granted group: String?, attributes: String = "", on connection: PostgresConnection) throws {
        name = "login_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10).lowercased())"
        try connection.execute("CREATE ROLE \(name) LOGIN \(attributes)")
        if let group { try connection.execute("GRANT \(group) TO \(name)") }
    }

    /// `url` with this role as the user.
    func url(_ url: String) -> String {
        url.replacingOccurrences(of: "://postgres@", with: "://\(name)@")
    }

    func drop(on connection: PostgresConnection, databases: Bool = false) {
        if databases { _ = try? connection.execute("DROP DATABASE IF EXISTS owned_\(name) WITH (FORCE)") }
        _ = try? connection.execute("DROP ROLE IF EXISTS \(name)")
    }
}

/// Readers who run their own SQL: a login role bound to a tenant in tenant_login_role sees that
/// tenant whatever it sets app.tenant_id to.
@Suite(.serialized, .timeLimit(.minutes(2))) struct TenantLoginRoleTests {
    @Test func boundReaderCannotChooseAnotherTenant() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 200)
        #expect(try Shell.run(Shell.executable(named: "audit-ingest"),
                              ["backfill", "--no-progress", "--database-url", fixture.url, file.path]).exitCode == 0)
        let tenants = try fixture.connection.execute("SELECT tenant_id, count(*) FROM audit_log GROUP BY 1 ORDER BY 2 DESC").rows
        let (mine, mineCount, other) = (tenants[0][0]!, tenants[0][1]!, tenants[1][0]!)
        let reader = try LoginRole(granted: "audit_reader", on: fixture.connection)
        defer { reader.drop(on: fixture.connection) }
        try fixture.connection.query("INSERT INTO tenant_login_role (role_name, tenant_id) VALUES ($1, $2)", [reader.name, mine])

        let session = try PostgresConnection(reader.url(fixture.url))
        defer { session.close() }
        #expect(try session.execute("SELECT count(*) FROM audit_log").scalar == mineCount, "bound: no app.tenant_id needed")
        try session.query("SELECT set_config('app.tenant_id', $1, false)", [other])
        #expect(try session.execute("SELECT count(*) FROM audit_log").scalar == mineCount, "app.tenant_id cannot move it")
        #expect(try session.query("SELECT count(*) FROM audit_log WHERE tenant_id = $1", [other]).scalar == "0")
        #expect(try session.execute("SELECT count(*) FROM tenant").scalar == "1")
        try session.execute("SET ROLE audit_reader")
        #expect(try session.query("SELECT count(*) FROM audit_log WHERE tenant_id = $1", [other]).scalar == "0", "nor SET ROLE")
        #expect(throws: PostgresError.self) { try session.execute("SELECT count(*) FROM tenant_login_role") }
    }
}

/// Bindings follow the role, fail closed, and app.tenant_id is for application roles only
/// (migration 0011). Each case here read every tenant before.
@Suite(.serialized, .timeLimit(.minutes(2))) struct FailClosedBindingTests {
    struct Setup {
        let fixture: PipelineFixture
        let mine: String, mineCount: String, other: String
    }

    static func setUp() throws -> Setup {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 200)
        #expect(try Shell.run(Shell.executable(named: "audit-ingest"),
                              ["backfill", "--no-progress", "--database-url", fixture.url, file.path]).exitCode == 0)
        let tenants = try fixture.connection.execute("SELECT tenant_id, count(*) FROM audit_log GROUP BY 1 ORDER BY 2 DESC").rows
        return Setup(fixture: fixture, mine: tenants[0][0]!, mineCount: tenants[0][1]!, other: tenants[1][0]!)
    }

    /// What `session` sees of audit_log after setting app.tenant_id to `tenant`.
    static func visible(_ session: PostgresConnection, acting tenant: String) throws -> String? {
        try session.query("SELECT set_config('app.tenant_id', $1, false)", [tenant])
        return try session.execute("SELECT count(*) FROM audit_log").scalar
    }

    @Test func aMemberOfABoundRoleAndARenamedBoundRoleStayBound() throws {
        let setup = try Self.setUp()
        let connection = setup.fixture.connection
        let group = "acme_\(UUID().uuidString.prefix(8).lowercased())"
        try connection.execute("CREATE ROLE \(group) NOLOGIN IN ROLE audit_reader")
        defer { _ = try? connection.execute("DROP ROLE IF EXISTS \(group)") }
        try connection.query("INSERT INTO tenant_login_role (role_name, tenant_id) VALUES ($1, $2)", [group, setup.mine])
        let bob = try LoginRole(granted: group, on: connection)  // CREATE ROLE bob LOGIN IN ROLE acme
        defer { bob.drop(on: connection) }
        let session = try PostgresConnection(bob.url(setup.fixture.url))
        defer { session.close() }
        #expect(try Self.visible(session, acting: setup.other) == setup.mineCount, "a member of a bound role is bound")

        let analyst = try LoginRole(granted: "audit_reader", on: connection)
        defer { analyst.drop(on: connection) }
        try connection.query("INSERT INTO tenant_login_role (role_name, tenant_id) VALUES ($1, $2)", [analyst.name, setup.mine])
        let renamed = LoginRole(name: analyst.name + "_renamed")
        try connection.execute("ALTER ROLE \(analyst.name) RENAME TO \(renamed.name)")
        defer { renamed.drop(on: connection) }
        let renamedSession = try PostgresConnection(renamed.url(setup.fixture.url))
        defer { renamedSession.close() }
        #expect(try Self.visible(renamedSession, acting: setup.other) == setup.mineCount, "renamed, still bound")
    }

    @Test func anUnboundReaderAndOneBoundToTwoTenantsSeeNothing() throws {
        let setup = try Self.setUp()
        let connection = setup.fixture.connection
        let unbound = try LoginRole(granted: "audit_reader", on: connection)
        defer { unbound.drop(on: connection) }
        let session = try PostgresConnection(unbound.url(setup.fixture.url))
        defer { session.close() }
        #expect(try Self.visible(session, acting: setup.other) == "0", "not an application role: app.tenant_id is ignored")
        #expect(try session.execute("SELECT count(*) FROM tenant").scalar == "0")

        let groups = ["a", "b"].map { "two_\($0)_\(UUID().uuidString.prefix(8).lowercased())" }
        for (group, tenant) in zip(groups, [setup.mine, setup.other]) {
            try connection.execute("CREATE ROLE \(group) NOLOGIN IN ROLE audit_reader")
            try connection.query("INSERT INTO tenant_login_role (role_name, tenant_id) VALUES ($1, $2)", [group, tenant])
        }
        defer { for group in groups { _ = try? connection.execute("DROP ROLE IF EXISTS \(group)") } }
        let both = try LoginRole(granted: groups.joined(separator: ", "), on: connection)
        defer { both.drop(on: connection) }
        let bothSession = try PostgresConnection(both.url(setup.fixture.url))
        defer { bothSession.close() }
        #expect(try Self.visible(bothSession, acting: setup.mine) == "0", "bound to two tenants: neither")

        #expect(throws: PostgresError.self, "a binding must name a role") {
            try connection.query("INSERT INTO tenant_login_role (role_name, tenant_id) VALUES ('no_such_role_x', $1)", [setup.mine])
        }
    }

    /// The ingest credential writes the COPY's eleven columns, positive counts and plausible
    /// months, nothing more.
    @Test func theIngestCredentialCannotForgeFeedPositionsCountsOrMonths() throws {
        let setup = try Self.setUp()
        let connection = setup.fixture.connection
        let ingest = try LoginRole(granted: "audit_ingest", on: connection)
        defer { ingest.drop(on: connection) }
        let session = try PostgresConnection(ingest.url(setup.fixture.url))
        defer { session.close() }
        try session.execute("SET ROLE audit_ingest")
        func refusal(_ sql: String) -> String {
            do { try session.execute(sql); return "accepted" } catch let error as PostgresError { return error.sqlState ?? "\(error)" } catch { return "\(error)" }
        }
        let stored = try #require(try connection.execute(#"SELECT max("timestamp")::text FROM audit_log"#).scalar)  // a month that exists
        let values = "gen_random_uuid(), '\(setup.mine)', 'planted', 'INFO', '\(stored)'"
        #expect(refusal(#"INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp", ingest_xid) VALUES (\#(values), '1')"#) == "42501")
        #expect(refusal(#"INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp", ingested_at) VALUES (\#(values), '2001-01-01Z')"#) == "42501")
        #expect(refusal(#"INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp") VALUES (\#(values))"#) == "accepted",
                "the COPY's own columns")
        #expect(refusal("INSERT INTO tenant_metrics_delta VALUES ('\(setup.mine)', '2026-03-01', -999999)") == "23514")
        #expect(refusal("SELECT ensure_month_partitions('0001-01-01')") == "22008")
        #expect(refusal("SELECT ensure_month_partitions('2999-01-01')") == "22008")
        #expect(refusal("SELECT ensure_month_partitions(current_date)") == "accepted")
        #expect(try connection.execute("SELECT count(*) FROM pg_class WHERE relname IN ('audit_log_0001_01', 'audit_log_2999_01')").scalar == "0")
    }
}
