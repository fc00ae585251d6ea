import Postgres

/// What a tenant is told of the rules its events are kept under (`GET /v1/tenants/{id}/rules`,
/// migration 0031): its retention, the legal holds in place, and the redaction rules that apply
/// to it. Read in the tenant's reader session, through `tenant_data_rules()`.
public struct TenantDataRules: Encodable, Sendable {
    public struct Retention: Encodable, Sendable {
        public var days: Int
        public var since: String
    }

    public struct Hold: Encodable, Sendable {
        public var id: Int64
        /// Nil: open on that side.
        public var eventsFrom: String?
        public var eventsUntil: String?
        public var since: String

        enum CodingKeys: String, CodingKey { case id, since, eventsFrom = "events_from", eventsUntil = "events_until" }
    }

    public struct Redaction: Encodable, Sendable {
        public var field: String
        public var action: String
        /// `tenant` (its own rule) or `all_tenants`.
        public var scope: String
        public var since: String
    }

    public var tenantID: String
    /// Nil: only the operator's global prune applies.
    public var retention: Retention?
    public var legalHolds: [Hold]
    public var redaction: [Redaction]

    enum CodingKeys: String, CodingKey {
        case retention, redaction
        case tenantID = "tenant_id", legalHolds = "legal_holds"
    }

    /// `retention` is written as null when there is none (the field is always there).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tenantID, forKey: .tenantID)
        try container.encode(retention, forKey: .retention)
        try container.encode(legalHolds, forKey: .legalHolds)
        try container.encode(redaction, forKey: .redaction)
    }

    /// Reads them in a reader session of `tenant` (`ReaderSession`).
    public static func read(tenant: String, on connection: PostgresConnection) throws -> TenantDataRules {
        let time = { (column: String) in #"to_char(\#(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"# }
        let rows = try connection.execute("""
            SELECT kind, field, action, scope, days::text, hold_id::text, \(time("events_from")), \(time("events_until")), \(time("since"))
            FROM tenant_data_rules() ORDER BY kind, field, hold_id
            """).rows
        var rules = TenantDataRules(tenantID: tenant, retention: nil, legalHolds: [], redaction: [])
        for row in rows {
            let since = row[8] ?? ""
            switch row[0] {
            case "retention": rules.retention = Retention(days: row[4].flatMap { Int($0) } ?? 0, since: since)
            case "hold": rules.legalHolds.append(Hold(id: row[5].flatMap { Int64($0) } ?? 0, eventsFrom: row[6], eventsUntil: row[7], since: since))
            default: rules.redaction.append(Redaction(field: row[1] ?? "", action: row[2] ?? "", scope: row[3] ?? "", since: since))
            }
        }
        return rules
    }
}
