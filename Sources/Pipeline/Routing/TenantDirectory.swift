import AuditCore
import Postgres
import Synchronization

/// The registered tenant ids, cached and refreshed, for the unknown-tenant rule.
///
/// Read through `ingest_tenant_ids()` (schemas/migrations/0007), a SECURITY DEFINER function:
/// the ingest role has no privilege on `tenant` and `tenant` forces row-level security, yet the
/// directory needs every tenant's id (and nothing else about them).
package final class TenantDirectory: Sendable {
    private let tenants = Mutex<Set<UUIDValue>>([])
    private let lastRefresh = Mutex<ContinuousClock.Instant?>(nil)
    /// How often `refreshIfStale` reloads. Default: 10 s.
    package let refreshInterval: Duration
    private let clock: ThreadClock

    package init(refreshInterval: Duration = .seconds(10), clock: ThreadClock = .system) {
        self.refreshInterval = refreshInterval
        self.clock = clock
    }

    package func refresh(on connection: PostgresConnection) throws {
        let ids = try connection.execute("SELECT id FROM ingest_tenant_ids() AS t(id)").rows.compactMap { $0[0].flatMap(UUIDValue.init) }
        tenants.withLock { $0 = Set(ids) }
        let now = clock.now()
        lastRefresh.withLock { $0 = now }
    }

    /// Reloads when the cache is older than `refreshInterval`.
    package func refreshIfStale(on connection: PostgresConnection) throws {
        let now = clock.now()
        let stale = lastRefresh.withLock { last in last.map { $0.duration(to: now) > refreshInterval } ?? true }
        if stale { try refresh(on: connection) }
    }

    /// The ids as of the last refresh (the engine's shards keep a copy and look it up without a lock).
    package var snapshot: Set<UUIDValue> { tenants.withLock { $0 } }

    package var count: Int { tenants.withLock { $0.count } }
}
