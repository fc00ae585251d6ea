import AuditRead
import Logging
import Postgres
import Synchronization

/// Whether the login the tenant read API connects as is fit to serve tenant tokens.
///
/// Every request reads as `audit_reader` inside its own transaction (`ReaderSession`), and no
/// value is ever inlined in its SQL. If a request still escaped that role, it would hold the
/// rights of the connection's login. So tenant tokens are served only over a login of its own, a
/// member of `audit_api` that is none of: a superuser, BYPASSRLS, CREATEROLE (which can grant
/// itself any role), the owner of `audit_log`, a member of `audit_ingest`, a role that may write
/// `audit_log`, or one that may read or write the server's files. The admin token is served
/// over any login: operators are trusted with everything.
///
/// Checked once, at the first tenant-token request (and logged at start when the database
/// answers); the verdict is kept for the process's life, as is the connection string.
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

    /// The first reason the connection's login is privileged, checked in order of weight.
    static let excessQuery = """
        SELECT session_user::text, CASE
            WHEN r.rolsuper THEN 'is a superuser'
            WHEN r.rolbypassrls THEN 'has BYPASSRLS'
            WHEN r.rolcreaterole THEN 'has CREATEROLE'
            WHEN pg_has_role(session_user, c.relowner, 'MEMBER') THEN 'owns audit_log'
            WHEN pg_has_role(session_user, 'audit_ingest', 'MEMBER') THEN 'is a member of audit_ingest'
            WHEN has_table_privilege(session_user, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') THEN 'may write audit_log'
            WHEN pg_has_role(session_user, 'pg_read_server_files', 'MEMBER')
              OR pg_has_role(session_user, 'pg_write_server_files', 'MEMBER')
              OR pg_has_role(session_user, 'pg_execute_server_program', 'MEMBER') THEN 'may read or write the server''s files'
            END
        FROM pg_roles r, pg_class c
        WHERE r.rolname = session_user AND c.oid = 'audit_log'::regclass
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
                with --read-database-url-file or READ_DATABASE_URL
                """, metadata: metadata)
        }
        return verdict
    }
}
