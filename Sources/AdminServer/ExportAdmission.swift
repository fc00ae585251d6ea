import AuditRead
import Synchronization

/// How many exports run at once: a few per tenant and a few in all, each on a connection of the
/// exports' own pool, so slow or stalled exports can take neither the searches' and feeds'
/// connections nor each other's tenants' turns. An export over a limit is refused at once
/// (429 for the tenant's limit, 503 for the total, both with Retry-After), never queued.
final class ExportAdmission: Sendable {
    struct Limits: Sendable {
        /// Default: 2.
        var perTenant: Int = 2
        /// Default: 4. Also the size of the exports' pool.
        var total: Int = 4
        /// An export whose client takes nothing (no 64 KiB chunk) for this long is aborted and
        /// its connection closed. Default: 30 s.
        var stallTimeout: Duration = .seconds(30)

        init(perTenant: Int = 2, total: Int = 4, stallTimeout: Duration = .seconds(30)) {
            self.perTenant = perTenant
            self.total = total
            self.stallTimeout = stallTimeout
        }
    }

    /// What a client is told to wait before it tries again.
    static let retryAfterSeconds = 5

    let limits: Limits
    private let running = Mutex<(byTenant: [String: Int], total: Int)>(([:], 0))

    init(limits: Limits) {
        precondition(limits.perTenant >= 1 && limits.total >= limits.perTenant, "export limits must be >= 1, per tenant <= total")
        self.limits = limits
    }

    /// Takes a turn for `tenant`, or throws `ReadError.busy` saying which limit is reached.
    /// Give it back with `release` exactly once.
    func admit(tenant: String) throws(ReadError) {
        let refusal: String? = running.withLock { running in
            if running.byTenant[tenant, default: 0] >= limits.perTenant {
                return "tenant \(tenant) already runs \(limits.perTenant) export(s), its most at once"
            }
            if running.total >= limits.total { return "\(limits.total) exports already run, the most at once" }
            running.byTenant[tenant, default: 0] += 1
            running.total += 1
            return nil
        }
        if let refusal {
            throw ReadError(kind: .busy, parameter: refusal.hasPrefix("tenant") ? "tenant" : nil,
                            message: "\(refusal): try again in \(Self.retryAfterSeconds) s")
        }
    }

    func release(tenant: String) {
        running.withLock { running in
            let left = running.byTenant[tenant, default: 1] - 1
            running.byTenant[tenant] = left > 0 ? left : nil
            running.total -= 1
        }
    }
}
