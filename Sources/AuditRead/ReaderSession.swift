import AuditCore
import Postgres

/// Runs read work the way every read request runs: in one read-only transaction as the
/// `audit_reader` role, with `app.tenant_id` set for that transaction only (`SET LOCAL`), so
/// row-level security, not only the queries' own `tenant_id = ...`, keeps tenants apart. The
/// connection's own role (and session settings) come back at COMMIT or ROLLBACK.
public enum ReaderSession {
    /// Checks that `tenantID` is a UUID (else `badParameter` naming `tenant_id`).
    public static func validTenantID(_ tenantID: String) throws(ReadError) -> String {
        guard UUIDValue(tenantID) != nil else { throw .badParameter("tenant_id", "\(tenantID) is not a tenant id (a UUID)") }
        return tenantID.lowercased()
    }

    /// Runs `body` as `audit_reader` acting for `tenantID`. Throws `ReadError.unknownTenant` when
    /// the tenant does not exist (seen as that tenant: its row is the only one visible).
    /// `statementTimeout` nil keeps the session's.
    public static func run<T>(tenantID: String, on connection: PostgresConnection, statementTimeout: Duration? = nil,
                              _ body: (PostgresConnection) throws -> T) throws -> T {
        try connection.transaction { connection in
            try connection.execute("SET TRANSACTION READ ONLY")
            try connection.execute("SET LOCAL ROLE audit_reader")
            if let statementTimeout {
                try connection.execute("SET LOCAL statement_timeout = \(Int64(statementTimeout.components.seconds * 1000))")
            }
            try connection.query("SELECT set_config('app.tenant_id', $1, true)", [tenantID])
            guard try connection.query("SELECT EXISTS (SELECT FROM tenant WHERE id = $1::uuid)", [tenantID]).scalar == "t" else {
                throw ReadError(kind: .unknownTenant, message: "no tenant \(tenantID)")
            }
            return try body(connection)
        }
    }
}
