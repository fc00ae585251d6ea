import AuditCore
import Postgres

/// The redaction rules in force (`redaction_rule`, migration 0030): for each tenant with rules
/// of its own, those and the global ones; for every other tenant, the global ones; for a
/// message whose tenant is not known (a dead letter rejected before its `tenant_id` was read),
/// every rule of every tenant, with hashing turned into masking.
package struct RedactionPolicy: Sendable {
    package static let none = RedactionPolicy(global: nil, tenants: [:], unknownTenant: nil, key: nil)

    private let global: RedactionRules?
    private let tenants: [UUIDValue: RedactionRules]
    private let unknownTenant: RedactionRules?
    /// The key `hmac` rules hash under; present whenever one of them is in force.
    package let key: RedactionKey?

    /// Rules are in force: the router looks them up per event only then.
    package var isEmpty: Bool { unknownTenant == nil }

    /// The rules for an event of `tenant` (nil: a message whose tenant is not known).
    @inline(__always)
    func rules(for tenant: UUIDValue?) -> RedactionRules? {
        guard !isEmpty else { return nil }
        guard let tenant else { return unknownTenant }
        return tenants[tenant] ?? global
    }

    /// An `hmac` rule made under another key than this run's, or with none given.
    package struct KeyMismatch: Error, CustomStringConvertible {
        package var description: String
    }

    /// A rule row as stored.
    package struct Rule: Sendable {
        package var tenantID: UUIDValue?
        package var field: RedactionField
        package var action: RedactionAction
        package var keyID: String?
    }

    /// `copiesOf`: the format of the source records, which the mapped event keeps whole in its
    /// metadata (`record`): rules on `ip_address` and `user_agent` also reach their copies there.
    package init(rules: [Rule], key: RedactionKey?, copiesOf format: EventFormat = .native) throws(KeyMismatch) {
        for rule in rules where rule.action == .hmac && rule.keyID != key?.id {
            let whose = rule.tenantID.map { "of tenant \($0)" } ?? "for every tenant"
            let given = key.map { "this run has redaction key \($0.id)" }
                ?? "this run has no redaction key (--redaction-key-file or REDACTION_KEY_FILE)"
            throw KeyMismatch(description: """
                redaction rule \(rule.field) \(whose) replaces values by an HMAC under redaction key \(rule.keyID ?? "?"), \
                but \(given): events would be stored unredacted or hashed under another key. Give the key the rule was \
                made with, or set the rule again under this key
                """)
        }
        let pairs = { (rules: [Rule]) in rules.map { (field: $0.field, action: $0.action) } }
        let everyTenant = rules.filter { $0.tenantID == nil }
        let byTenant = Dictionary(grouping: rules.filter { $0.tenantID != nil }, by: { $0.tenantID! })
        // Whoever the message is of, nothing any rule names is kept; without a tenant's key, masked.
        let strictest = rules.map { (field: $0.field, action: $0.action == .hmac ? RedactionAction.mask : $0.action) }
            .sorted { ($0.action == .drop ? 1 : 0) < ($1.action == .drop ? 1 : 0) }  // a drop wins over a mask
        self.init(global: everyTenant.isEmpty ? nil : RedactionRules(pairs(everyTenant), copiesOf: format),
                  tenants: byTenant.mapValues { RedactionRules(pairs(everyTenant) + pairs($0), copiesOf: format) },
                  unknownTenant: rules.isEmpty ? nil : RedactionRules(strictest, copiesOf: format), key: key)
    }

    private init(global: RedactionRules?, tenants: [UUIDValue: RedactionRules], unknownTenant: RedactionRules?, key: RedactionKey?) {
        self.global = global
        self.tenants = tenants
        self.unknownTenant = unknownTenant
        self.key = key
    }

    /// The rules as stored.
    package static func rules(on connection: PostgresConnection) throws -> [Rule] {
        try connection.execute("SELECT tenant_id::text, field, action, key_id FROM redaction_rule ORDER BY tenant_id NULLS FIRST, field")
            .rows.map { row in
                Rule(tenantID: row[0].flatMap(UUIDValue.init), field: try RedactionField(parsing: row[1] ?? ""),
                     action: RedactionAction(rawValue: row[2] ?? "") ?? .drop, keyID: row[3])
            }
    }

    package static func load(on connection: PostgresConnection, key: RedactionKey?, copiesOf format: EventFormat = .native) throws -> RedactionPolicy {
        try RedactionPolicy(rules: rules(on: connection), key: key, copiesOf: format)
    }
}
