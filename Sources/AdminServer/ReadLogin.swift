import AuditRead
import Logging
import Postgres
import Synchronization

/// Whether the login the tenant read API connects as is fit to serve tenant tokens.
///
/// Every request reads as `audit_reader` inside its own transaction (`ReaderSession`), and no
/// value is ever inlined in its SQL. If a request still escaped that role, it would hold the
/// rights of the connection's login. So tenant tokens are served only over a login of its own, a
/// member of `audit_api` that, through none of the roles it is a member of, is a superuser,
/// BYPASSRLS, CREATEROLE (which can grant itself any role), owns or may write a table of the
/// schema or create in it, is `audit_ingest`, `audit_stream`, `pg_read_all_data` or
/// `pg_write_all_data`, or may read or write the server's files. The admin token is served over
/// any login: operators are trusted with everything.
///
/// Checked once, at the first tenant-token request (and logged at start when the database
/// answers); the verdict is kept for the process's life, as is the connection string: restart
/// the server after changing the login's roles.
final class ReadLogin: Sendable {
    /// Why the login is too powerful, or nil when it is fit.
    struct Verdict: Sendable, Equatable {
        var login: String
        var excess: String?
    }

    /// Serve tenant tokens even over a privileged login (`--allow-privileged-read-login`).
    let allowPrivileged: Bool
    private let logger: Logger
    private let verdict = Mutex<Verdict?>(nil)

    init(allowPrivileged: Bool, logger: Logger) {
        self.allowPrivileged = allowPrivileged
        self.logger = logger
    }

    /// The first reason the connection's login is unfit, checked in order of weight. Attributes
    /// and memberships count through every role the login is a member of (it could SET ROLE to
    /// one), privileges through every such role too; any relation of the schema counts, not only
    /// audit_log (tokens, bindings, tenants, cursors' key, the feed's writer lock).
    static let excessQuery = """
        WITH member_of AS (
            SELECT r.* FROM pg_roles r WHERE pg_has_role(session_user, r.oid, 'MEMBER')
        ), schema_relations AS (
            SELECT c.oid, c.relowner FROM pg_class c
            WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'audit_log'::regclass) AND c.relkind IN ('r', 'p', 'v')
        )
        SELECT session_user::text, CASE
            WHEN NOT pg_has_role(session_user, 'audit_api', 'MEMBER') THEN 'is not a member of audit_api'
            WHEN EXISTS (SELECT FROM member_of WHERE rolsuper) THEN 'is a superuser (or may become one)'
            WHEN EXISTS (SELECT FROM member_of WHERE rolbypassrls) THEN 'has BYPASSRLS (or may take a role that has it)'
            WHEN EXISTS (SELECT FROM member_of WHERE rolcreaterole) THEN 'has CREATEROLE (or may take a role that has it)'
            WHEN EXISTS (SELECT FROM schema_relations s JOIN member_of m ON m.oid = s.relowner) THEN 'owns tables of the schema'
            WHEN EXISTS (SELECT FROM member_of WHERE rolname IN ('audit_ingest', 'audit_stream')) THEN 'is a member of audit_ingest or audit_stream'
            WHEN EXISTS (SELECT FROM member_of WHERE rolname IN ('pg_read_all_data', 'pg_write_all_data'))
                THEN 'is a member of pg_read_all_data or pg_write_all_data'
            WHEN EXISTS (SELECT FROM schema_relations s, member_of m
                         WHERE has_table_privilege(m.oid, s.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) THEN 'may write audit_log or other tables of the schema'
            WHEN EXISTS (SELECT FROM member_of m
                         WHERE has_schema_privilege(m.oid, (SELECT relnamespace FROM pg_class WHERE oid = 'audit_log'::regclass), 'CREATE'))
                THEN 'may create objects in the schema'
            WHEN EXISTS (SELECT FROM member_of WHERE rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program'))
                THEN 'may read or write the server''s files'
            END
        FROM pg_roles r
        WHERE r.rolname = session_user
        """

    static func check(on connection: PostgresConnection) throws -> Verdict {
        let row = try connection.execute(excessQuery).rows.first
        guard let login = row?[0] else {
            throw PostgresError(code: .unexpectedResult, message: "the read API's login is not in pg_roles")
        }
        return Verdict(login: login, excess: row?[1])
    }

    /// Throws `ReadError.unavailable` when tenant tokens may not be served over this connection's
    /// login. The tenant is told only that; the log says why, once.
    func requireFitForTenants(on connection: PostgresConnection) throws {
        let verdict = try self.verdict.withLock { $0 } ?? record(try Self.check(on: connection))
        guard verdict.excess != nil, !allowPrivileged else { return }
        throw ReadError(kind: .unavailable, message: """
            this server does not serve tenant tokens: its database login is not set up for them (its log says why)
            """)
    }

    /// Logs what the login means for tenant tokens, once per process.
    @discardableResult
    func record(_ verdict: Verdict) -> Verdict {
        let first = self.verdict.withLock { kept -> Bool in
            defer { if kept == nil { kept = verdict } }
            return kept == nil
        }
        guard first, let excess = verdict.excess else { return verdict }
        let metadata: Logger.Metadata = [LogKey.login: "\(verdict.login)"]
        if allowPrivileged {
            logger.warning("""
                tenant tokens are served over the login \(verdict.login), which \(excess) (--allow-privileged-read-login): \
                a request that escaped audit_reader would hold its rights
                """, metadata: metadata)
        } else {
            logger.error("""
                tenant tokens are refused (503): the read API's login \(verdict.login) \(excess). Serve them as a login \
                of its own: CREATE ROLE audit_read_api LOGIN IN ROLE audit_api, then give its connection string \
                with --read-database-url-file or READ_DATABASE_URL, and restart
                """, metadata: metadata)
        }
        return verdict
    }
}
