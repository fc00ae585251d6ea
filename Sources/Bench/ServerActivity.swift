import Foundation
import Postgres

/// The server's cumulative work, read before and after a path to say what it cost beyond CPU:
/// write-ahead log and checkpoints (both cluster-wide).
struct ServerActivity {
    var walBytes = 0.0
    var checkpoints = 0.0

    /// Zero when the statistics cannot be read (the figures are then left out).
    init(_ connection: PostgresConnection) {
        guard let row = try? connection.execute("""
            SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8, (checkpoints_timed + checkpoints_req)::float8
            FROM pg_stat_bgwriter
            """).rows.first, row.count == 2 else { return }
        walBytes = row[0].flatMap(Double.init) ?? 0
        checkpoints = row[1].flatMap(Double.init) ?? 0
    }

    private init(walBytes: Double, checkpoints: Double) {
        self.walBytes = walBytes
        self.checkpoints = checkpoints
    }

    static func - (after: ServerActivity, before: ServerActivity) -> ServerActivity {
        ServerActivity(walBytes: after.walBytes - before.walBytes, checkpoints: after.checkpoints - before.checkpoints)
    }
}

/// The size of `audit_log`'s partitions in one database: heap (with TOAST) and indexes, in MiB.
struct StoredSize {
    var tableMiB = 0.0
    var indexMiB = 0.0

    init(url: String) {
        guard let connection = try? PostgresConnection(url) else { return }
        defer { connection.close() }
        guard let row = try? connection.execute("""
            SELECT coalesce(sum(pg_table_size(inhrelid)), 0)::float8 / 1048576,
                   coalesce(sum(pg_indexes_size(inhrelid)), 0)::float8 / 1048576
            FROM pg_inherits WHERE inhparent = 'audit_log'::regclass
            """).rows.first, row.count == 2 else { return }
        tableMiB = row[0].flatMap(Double.init) ?? 0
        indexMiB = row[1].flatMap(Double.init) ?? 0
    }
}
