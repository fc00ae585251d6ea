import AuditCore
import Postgres
import Synchronization

/// The registered tenant ids, for the unknown-tenant rule, and the redaction rules in force
/// (`RedactionPolicy`): cached, and refreshed together.
///
/// Read through `ingest_tenant_ids()` (schemas/migrations/0007), a SECURITY DEFINER function:
/// the ingest role has no privilege on `tenant` and `tenant` forces row-level security, yet the
/// directory needs every tenant's id (and nothing else about them).
package final class TenantDirectory: Sendable {
    private let tenants = Mutex<Set<UUIDValue>>([])
    private let policy = Mutex<RedactionPolicy>(.none)
    /// What `hmac` rules hash under (`--redaction-key-file`).
    private let redactionKey: RedactionKey?
    /// The format of the run's source records (`--format`), whose copies rules reach too.
    private let sourceFormat: EventFormat
    private let lastRefresh = Mutex<ContinuousClock.Instant?>(nil)
    /// How often `refreshIfStale` reloads. Default: 10 s.
    package let refreshInterval: Duration
    private let clock: ThreadClock

    package init(refreshInterval: Duration = .seconds(10), clock: ThreadClock = .system, redactionKey: RedactionKey? = nil,
                 sourceFormat: EventFormat = .native) {
        self.refreshInterval = refreshInterval
        self.clock = clock
        self.redactionKey = redactionKey
        self.sourceFormat = sourceFormat
    }

    /// Throws `RedactionPolicy.KeyMismatch` when an `hmac` rule was made under another key than
    /// this run's: the run stops rather than store what the rule hides.
    package func refresh(on connection: PostgresConnection) throws {
        let ids = try connection.execute("SELECT id FROM ingest_tenant_ids() AS t(id)").rows.compactMap { $0[0].flatMap(UUIDValue.init) }
        let redaction = try RedactionPolicy.load(on: connection, key: redactionKey, copiesOf: sourceFormat)
        tenants.withLock { $0 = Set(ids) }
        policy.withLock { $0 = redaction }
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

    /// The redaction rules as of the last refresh.
    package var redaction: RedactionPolicy { policy.withLock { $0 } }

    package var count: Int { tenants.withLock { $0.count } }
}
