import AuditCore
import Postgres

/// Runs read work the way every read request runs: in one read-only transaction as the
/// `audit_reader` role, with `app.tenant_id` set for that transaction only (`SET LOCAL`), so
/// row-level security, not only the queries' own `tenant_id = ...`, keeps tenants apart. The
/// connection's own role (and session settings) come back at COMMIT or ROLLBACK.
///
/// `standard_conforming_strings` is forced on for the transaction: no read statement carries a
/// value in its text (`SQLConditions`), and this keeps a server, database or role configured with
/// it off from changing what any literal in our own SQL means.
public enum ReaderSession {
    /// Checks that `tenantID` is a UUID (else `badParameter` naming `tenant_id`).
    public static func validTenantID(_ tenantID: String) throws(ReadError) -> String {
        guard UUIDValue(tenantID) != nil else { throw .badParameter("tenant_id", "\(tenantID) is not a tenant id (a UUID)") }
        return tenantID.lowercased()
    }

    /// Runs `body` as `audit_reader` acting for `tenantID`. Throws `ReadError.unknownTenant` when
    /// the tenant does not exist (seen as that tenant: its row is the only one visible), and
    /// `ReadError.tenantNotActive` when `activeOnly` and its status is `suspended` or `inactive`
    /// (a tenant's own tokens read only while it is active; an operator reads any).
    /// `statementTimeout` nil keeps the session's.
    public static func run<T>(tenantID: String, on connection: PostgresConnection, statementTimeout: Duration? = nil,
                              activeOnly: Bool = false, _ body: (PostgresConnection) throws -> T) throws -> T {
        try connection.transaction { connection in
            try connection.execute("SET TRANSACTION READ ONLY; SET LOCAL standard_conforming_strings = on; SET LOCAL ROLE audit_reader")
            if let statementTimeout {
                try connection.execute("SET LOCAL statement_timeout = \(Int64(statementTimeout.components.seconds * 1000))")
            }
            try connection.query("SELECT set_config('app.tenant_id', $1, true)", [tenantID])
            guard let status = try connection.query("SELECT status FROM tenant WHERE id = $1::uuid", [tenantID]).scalar else {
                throw ReadError(kind: .unknownTenant, message: "no tenant \(tenantID)")
            }
            if activeOnly && status != "active" {
                throw ReadError(kind: .tenantNotActive, message: "tenant \(tenantID) is \(status): its tokens read nothing until it is active again")
            }
            return try body(connection)
        }
    }
}
