import Postgres

/// The one owner of the count fold. Each flush appends its per-tenant counts to
/// `tenant_metrics_delta` (migration 0010), so concurrent flushers never contend on a tenant's
/// row; the fold moves them into `tenant_metrics.audit_log_count`. A run folds every
/// `foldEvery` on a thread of its own (`CountFolder`) and once at its end, and the metrics rollup
/// before it rolls a day up.
package enum TenantCountFold {
    /// Folds the pending deltas; returns how many delta rows moved (0 while another fold runs).
    @discardableResult
    package static func fold(on connection: PostgresConnection) throws -> Int {
        Int(try connection.execute("SELECT fold_tenant_metrics_deltas()").scalar ?? "0") ?? 0
    }

    /// Keeps the newest of the feed's month records per tenant and month (migration 0023): the
    /// engine at the end of a run and the metrics rollup. Returns how many it deleted.
    @discardableResult
    package static func compactFeedMonths(on connection: PostgresConnection) throws -> Int {
        Int(try connection.execute("SELECT compact_tenant_feed_months()").scalar ?? "0") ?? 0
    }
}
