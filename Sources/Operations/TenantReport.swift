import Foundation
import Postgres

/// `tenant report`: one tenant's size and activity.
public struct TenantReport: Codable, Sendable {
    public struct ActionCount: Codable, Sendable {
        public var action: String
        public var count: Int64
    }

    public var tenantID: String
    public var name: String
    public var code: String
    public var status: String
    public var userCount: Int64
    public var itemCount: Int64
    public var auditEventsTotal: Int64
    public var auditEventsLast24Hours: Int64
    public var auditEventsBySeverity: [String: Int64]
    public var partitionsTouched: [String]
    /// From the latest `tenant_metrics` rollup (see `rollup_tenant_metrics`).
    public var estimatedStorageMB: Double
    public var maxStorageGB: Int
    public var storageQuotaUsedPercent: Double
    public var topActions: [ActionCount]

    public enum Lookup: Error, Equatable {
        case malformedID
        case notFound
    }

    /// Throws `Lookup.malformedID` for a tenant id that is not a UUID and `Lookup.notFound` for an
    /// unknown one.
    ///
    /// Runs in one read-only transaction acting for that tenant (`app.tenant_id`), so row-level
    /// security, forced on the tenant tables, shows the owner's session only this tenant's rows.
    public static func build(tenantID: String, on connection: PostgresConnection) throws -> TenantReport {
        guard UUID(uuidString: tenantID) != nil else { throw Lookup.malformedID }
        let id = tenantID.lowercased()
        return try connection.transaction { connection in
            try connection.execute("SET TRANSACTION READ ONLY")
            try connection.query("SELECT set_config('app.tenant_id', $1, true)", [id])
            return try build(id: id, on: connection)
        }
    }

    private static func build(id: String, on connection: PostgresConnection) throws -> TenantReport {
        guard let tenant = try connection.query(
            "SELECT name, code, status, max_storage_gb FROM tenant WHERE id = $1::uuid", [id]).rows.first else {
            throw Lookup.notFound
        }
        func scalar(_ sql: String) throws -> Int64 { Int64(try connection.query(sql, [id]).scalar ?? "0") ?? 0 }
        let severities = try connection.query(
            "SELECT severity, count(*) FROM audit_log WHERE tenant_id = $1::uuid GROUP BY 1", [id]).rows
            .reduce(into: [String: Int64]()) { $0[$1[0]!] = Int64($1[1]!) ?? 0 }
        let partitions = try connection.query(
            "SELECT DISTINCT tableoid::regclass::text FROM audit_log WHERE tenant_id = $1::uuid ORDER BY 1", [id]).rows.compactMap { $0[0] }
        let storage = Double(try connection.query("""
            SELECT storage_used_mb FROM tenant_metrics
            WHERE tenant_id = $1::uuid AND "date" <= (now() AT TIME ZONE 'UTC')::date ORDER BY "date" DESC LIMIT 1
            """, [id]).scalar ?? "0") ?? 0
        let actions = try connection.query("""
            SELECT action, count(*) FROM audit_log WHERE tenant_id = $1::uuid GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10
            """, [id]).rows.map { ActionCount(action: $0[0]!, count: Int64($0[1]!) ?? 0) }
        let quotaGB = Int(tenant[3] ?? "0") ?? 0
        return TenantReport(
            tenantID: id, name: tenant[0] ?? "", code: tenant[1] ?? "", status: tenant[2] ?? "",
            userCount: try scalar(#"SELECT count(*) FROM "user" WHERE tenant_id = $1::uuid"#),
            itemCount: try scalar("SELECT count(*) FROM item WHERE tenant_id = $1::uuid"),
            auditEventsTotal: severities.values.reduce(0, +),
            auditEventsLast24Hours: try scalar(
                #"SELECT count(*) FROM audit_log WHERE tenant_id = $1::uuid AND "timestamp" >= now() - interval '24 hours'"#),
            auditEventsBySeverity: severities, partitionsTouched: partitions, estimatedStorageMB: storage,
            maxStorageGB: quotaGB,
            storageQuotaUsedPercent: quotaGB > 0 ? (storage / (Double(quotaGB) * 1024) * 100 * 1000).rounded() / 1000 : 0,
            topActions: actions)
    }
}
