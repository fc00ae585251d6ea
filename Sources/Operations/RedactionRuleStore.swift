import AuditCore
import Foundation
import Pipeline
import Postgres

/// `tenant redaction set|clear|list|hash` (migration 0030): the rules ingest applies before an
/// event is stored. A running ingest picks a change up within 10 s.
public enum RedactionRuleStore {
    public struct Rule: Encodable, Sendable {
        /// Nil: the rule applies to every tenant.
        public var tenantID: String?
        public var field: String
        public var action: String
        /// The redaction key an `hmac` rule hashes under (its id, never the key).
        public var keyID: String?
        public var createdAt: String
        public var createdBy: String
    }

    /// Sets the rule for `field` of `tenant` (nil: every tenant), replacing the one it had.
    /// An `hmac` rule needs the redaction key, whose id it records.
    package static func set(tenant: String?, field text: String, action name: String, key: RedactionKey?,
                           on connection: PostgresConnection) throws -> Rule {
        let field: RedactionField
        do { field = try RedactionField(parsing: text) } catch { throw OperationsError(error.description) }
        guard let action = RedactionAction(rawValue: name) else {
            throw OperationsError("--action \(name): use drop, mask or hmac")
        }
        if let refusal = field.refusal(of: action) { throw OperationsError(refusal) }
        if action == .hmac, key == nil {
            throw OperationsError("an hmac rule needs the redaction key (--redaction-key-file or REDACTION_KEY_FILE; `tenant redaction key generate` writes one)")
        }
        if let tenant, try connection.query("SELECT EXISTS (SELECT FROM tenant WHERE id = $1::uuid)", [tenant]).scalar != "t" {
            throw OperationsError("no tenant \(tenant)")
        }
        let keyID = action == .hmac ? key?.id : nil
        try connection.transaction { connection in
            try delete(tenant: tenant, field: field.description, on: connection)
            // One key for every hmac rule: ingest runs with one, and refuses rules under another.
            if let keyID, let other = try connection.query(
                "SELECT key_id FROM redaction_rule WHERE key_id <> $1 LIMIT 1 FOR UPDATE", [keyID]).scalar {
                throw OperationsError("""
                    hmac rules already hash under redaction key \(other), and ingest runs with one key: give that key, \
                    or to change keys, clear every hmac rule and set them again under the new one (docs/redaction.md)
                    """)
            }
            try connection.query("INSERT INTO redaction_rule (tenant_id, field, action, key_id) VALUES ($1::uuid, $2, $3, $4)",
                                 [tenant, field.description, action.rawValue, keyID])
        }
        guard let rule = try list(on: connection).first(where: { $0.tenantID == tenant?.lowercased() && $0.field == field.description }) else {
            throw OperationsError("redaction_rule: the rule is not listed")
        }
        return rule
    }

    /// Removes the rule for `field` of `tenant` (nil: the rule for every tenant); false when there was none.
    public static func clear(tenant: String?, field: String, on connection: PostgresConnection) throws -> Bool {
        try delete(tenant: tenant, field: field, on: connection) == 1
    }

    @discardableResult
    private static func delete(tenant: String?, field: String, on connection: PostgresConnection) throws -> Int {
        try connection.query("""
            DELETE FROM redaction_rule
            WHERE coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                = coalesce($1::uuid, '00000000-0000-0000-0000-000000000000'::uuid) AND field = $2
            """, [tenant, field]).affectedRows
    }

    /// Every rule, those for every tenant first.
    public static func list(on connection: PostgresConnection) throws -> [Rule] {
        try connection.execute("""
            SELECT tenant_id::text, field, action, key_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), created_by
            FROM redaction_rule ORDER BY tenant_id NULLS FIRST, field
            """).rows.map { row in
                Rule(tenantID: row[0], field: row[1] ?? "", action: row[2] ?? "", keyID: row[3], createdAt: row[4] ?? "",
                     createdBy: row[5] ?? "")
            }
    }

    /// What an `hmac` rule stores for `value` of `tenant`: search `custom_metadata` for it
    /// (`events search --metadata '{"path": "hmac-sha256:..."}'`). A string is hashed as its text;
    /// with `asJSON`, `value` is JSON (`42`, `true`, `{"a": 1}`), hashed as jsonb prints it.
    package static func hash(_ value: String, asJSON: Bool, tenant: String, key: RedactionKey) throws -> String {
        guard let tenantID = UUIDValue(tenant) else { throw OperationsError("--tenant \(tenant) is not a tenant id (expected a UUID)") }
        let tenantKey = key.tenantKey(tenantID)
        guard asJSON else { return Array(value.utf8).withUnsafeBytes { RedactionKey.hash($0, with: tenantKey) } }
        // A string is hashed as its characters, anything else as jsonb prints it (as the row holds it).
        if let string = try? JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed) as? String {
            return Array(string.utf8).withUnsafeBytes { RedactionKey.hash($0, with: tenantKey) }
        }
        let printer = JSONBText(maxBytes: 4 * value.utf8.count + 64)
        do {
            return try Array(value.utf8).withUnsafeBytes { text throws(Rejection) in
                RedactionKey.hash(try printer.canonical(text), with: tenantKey)
            }
        } catch {
            throw OperationsError("--json: the value is not JSON (\((error as? Rejection)?.kind.rawValue ?? "invalid")); it is not shown here")
        }
    }
}
