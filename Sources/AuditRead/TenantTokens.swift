import Crypto
import Foundation
import Postgres

/// Per-tenant bearer tokens for the read API (`tenant_api_token`, migration 0009). A token is
/// `ait_` and 64 hex digits (256 random bits); only its SHA-256 is stored, so the table holds
/// nothing that authenticates. These run as the schema owner (the CLI, the API's own role).
public enum TenantTokens {
    public struct Issued: Sendable {
        public var id: String
        /// Shown once; never stored or logged.
        public var token: String
    }

    public struct Listed: Codable, Sendable {
        public var id: String
        public var tenantID: String
        public var name: String
        public var createdAt: String
        public var revokedAt: String?
    }

    /// Makes a token for `tenantID`. Throws `ReadError.unknownTenant` when there is no such tenant,
    /// `ReadError.tenantNotActive` when it is suspended or inactive.
    public static func create(tenantID: String, name: String, on connection: PostgresConnection) throws -> Issued {
        let status = try connection.transaction { connection in  // the tenant row is visible as that tenant
            try connection.query("SELECT set_config('app.tenant_id', $1, true)", [tenantID])
            return try connection.query("SELECT status FROM tenant WHERE id = $1::uuid", [tenantID]).scalar
        }
        guard let status else { throw ReadError(kind: .unknownTenant, message: "no tenant \(tenantID)") }
        guard status == "active" else {
            throw ReadError(kind: .tenantNotActive, message: "tenant \(tenantID) is \(status): tokens are issued to active tenants only")
        }
        var generator = SystemRandomNumberGenerator()  // getrandom(2): cryptographically secure
        let random = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = "ait_" + random.map { String(format: "%02x", $0) }.joined()
        do {
            let id = try connection.query(
                "INSERT INTO tenant_api_token (tenant_id, name, token_hash) VALUES ($1::uuid, $2, $3) RETURNING id::text",
                [tenantID, name, hash(token)]).scalar!
            return Issued(id: id, token: token)
        } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.foreignKeyViolation {
            throw ReadError(kind: .unknownTenant, message: "no tenant \(tenantID)")
        }
    }

    /// Tokens (never their hashes), of one tenant or all, oldest first.
    public static func list(tenantID: String?, on connection: PostgresConnection) throws -> [Listed] {
        let utc = { (column: String) in EventColumns.utcText(column) }
        return try connection.query("""
            SELECT id::text, tenant_id::text, name, \(utc("created_at")), \(utc("revoked_at")) FROM tenant_api_token
            WHERE $1::uuid IS NULL OR tenant_id = $1::uuid ORDER BY created_at, id
            """, [tenantID]).rows.map {
            Listed(id: $0[0]!, tenantID: $0[1]!, name: $0[2]!, createdAt: $0[3]!, revokedAt: $0[4])
        }
    }

    /// Revokes a token by id; false when there is no such token or it was already revoked.
    public static func revoke(id: String, on connection: PostgresConnection) throws -> Bool {
        try connection.query("UPDATE tenant_api_token SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL",
                             [id]).affectedRows == 1
    }

    /// The tenant a presented token reads, or nil for an unknown or revoked one.
    public static func tenant(ofToken token: String, on connection: PostgresConnection) throws -> String? {
        guard token.hasPrefix("ait_"), token.utf8.count == 68 else { return nil }
        return try connection.query("SELECT tenant_id::text FROM tenant_api_token WHERE token_hash = $1 AND revoked_at IS NULL",
                                    [hash(token)]).scalar
    }

    static func hash(_ token: String) -> String { SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined() }
}
