import Foundation
import Postgres

/// `partitions list | ensure | prune`: month partitions of audit_log and tenant_metrics.
public enum Partitions {
    public struct Info: Codable, Sendable {
        public var parent: String
        public var name: String
        public var bounds: String
        public var rowEstimate: Int64
        public var totalBytes: Int64
    }

    public static func list(on connection: PostgresConnection) throws -> [Info] {
        try connection.execute("""
            SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint,
                   pg_total_relation_size(c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname IN ('audit_log', 'tenant_metrics') AND p.relnamespace = 'public'::regnamespace
            ORDER BY p.relname, c.relname
            """).rows.map {
                Info(parent: $0[0]!, name: $0[1]!, bounds: $0[2] ?? "", rowEstimate: Int64($0[3]!) ?? 0, totalBytes: Int64($0[4]!) ?? 0)
            }
    }

    /// The most months `ensure` makes ahead: each month is two tables (and their indexes) that
    /// every later partition-wide operation pays for. Default: 24.
    public static let maxMonthsAhead = 24

    /// Makes the current month and `monthsAhead` following ones (for both parents). Returns the
    /// partitions created. Throws `OperationsError` when `monthsAhead` is outside 0...`maxMonthsAhead`.
    public static func ensure(monthsAhead: Int, on connection: PostgresConnection) throws -> Int {
        try checkMonthsAhead(monthsAhead)
        var created = 0
        for ahead in 0...max(0, monthsAhead) {
            created += try connection.transaction { connection in
                Int(try connection.query(
                    "SELECT ensure_month_partitions((date_trunc('month', now() AT TIME ZONE 'UTC') + $1 * interval '1 month')::date)",
                    ["\(ahead)"]).scalar ?? "0") ?? 0
            }
        }
        return created
    }

    /// Throws `OperationsError` naming the allowed range unless 0 <= `monthsAhead` <= `maxMonthsAhead`.
    public static func checkMonthsAhead(_ monthsAhead: Int) throws {
        guard (0...maxMonthsAhead).contains(monthsAhead) else {
            throw OperationsError("premake must be between 0 and \(maxMonthsAhead) months, not \(monthsAhead)")
        }
    }

    public struct PruneResult: Codable, Sendable {
        /// The months dropped (`audit_log_YYYY_MM`), including ones an earlier prune had
        /// detached but not finished.
        public var dropped: [String]
        /// Archive files written, one per dropped partition (`COPY ... TO` as CSV with a header, gzip).
        public var archives: [String]
        /// Row count and SHA-256 of each archive (also in `FILE.manifest.json` and `FILE.sha256`).
        public var archived: [PartitionArchive]
        public var dryRun: Bool
    }

    /// Detaches and drops audit_log months that ended more than `olderThanMonths` months before the
    /// current month, after writing each to an archive in `archiveDirectory` when given (see
    /// `PartitionArchive`: never overwritten, fsynced, with row count and checksum).
    /// Restore an archive with: `gunzip -c FILE | psql -c "COPY audit_log FROM STDIN (FORMAT csv, HEADER)"`
    /// (after `SELECT ensure_month_partitions('YYYY-MM-01')`). tenant_metrics is kept: it is the
    /// history of what was stored.
    ///
    /// A month is detached and renamed `audit_log_YYYY_MM_detached` in one transaction (under
    /// the partition advisory lock), so a late event for it gets a fresh partition instead of
    /// failing; it is dropped only after its archive is durable. A prune that failed after
    /// detaching is finished by the next one, which looks for such tables first (and for months
    /// detached under their plain name by earlier versions).
    public static func prune(olderThanMonths: Int, archiveDirectory: String?, dryRun: Bool,
                             on connection: PostgresConnection) throws -> PruneResult {
        guard olderThanMonths >= 1 else { throw OperationsError("--older-than must be at least 1 month") }
        let cutoff = try connection.query(
            "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - $1 * interval '1 month', 'YYYY_MM')",
            ["\(olderThanMonths)"]).scalar!
        let attached = try list(on: connection)
            .filter { $0.parent == "audit_log" && String($0.name.dropFirst("audit_log_".count)) < cutoff }
            .map(\.name)
        let leftovers = try detachedLeftovers(olderThan: cutoff, on: connection)
        var result = PruneResult(dropped: [], archives: [], archived: [], dryRun: dryRun)
        if dryRun {
            result.dropped = leftovers.map(\.month) + attached
            return result
        }
        if let archiveDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: archiveDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw OperationsError("archive directory \(archiveDirectory) does not exist")
            }
        }
        var work = leftovers
        for name in attached {
            work.append((table: try detach(name, on: connection), month: name))
        }
        for (table, month) in work {
            if let archiveDirectory {
                do {
                    let archive = try PartitionArchive.write(table: table, month: month, directory: archiveDirectory, on: connection)
                    result.archives.append(archive.file)
                    result.archived.append(archive)
                } catch {
                    throw OperationsError("""
                        archiving \(month) failed (\(error)); it is kept, detached, as \(table): the next prune finishes it \
                        (late events for that month go to a new partition meanwhile)
                        """)
                }
            }
            try connection.execute("DROP TABLE \(PostgresConnection.quoteIdentifier(table))")
            result.dropped.append(month)
        }
        return result
    }

    /// Detaches `name` and renames it `<name>_detached` (or `_detached_2`, ...) in one
    /// transaction under the lock `ensure_month_partitions` takes. Returns the new name.
    static func detach(_ name: String, on connection: PostgresConnection) throws -> String {
        try connection.transaction { connection in
            try connection.execute("SELECT pg_advisory_xact_lock(7022629598042026612)")  // ensure_month_partitions' lock
            try connection.execute("ALTER TABLE audit_log DETACH PARTITION \(PostgresConnection.quoteIdentifier(name))")
            // verify accounts the month's sealed groups as removed from here on (migration 0018).
            _ = try connection.query("INSERT INTO audit_month_removed (month) SELECT to_date($1, 'YYYY_MM')",
                                     [String(name.dropFirst("audit_log_".count))])
            let renamed = try connection.query("""
                SELECT n FROM (SELECT $1 || '_detached' || CASE WHEN i = 1 THEN '' ELSE '_' || i END AS n, i
                               FROM generate_series(1, 1000) i) c
                WHERE to_regclass(quote_ident(n)) IS NULL ORDER BY i LIMIT 1
                """, [name]).scalar!
            try connection.execute("ALTER TABLE \(PostgresConnection.quoteIdentifier(name)) RENAME TO \(PostgresConnection.quoteIdentifier(renamed))")
            return renamed
        }
    }

    /// Tables an earlier prune detached and did not drop (`audit_log_YYYY_MM_detached...`, or
    /// plain `audit_log_YYYY_MM` tables that are not partitions) whose month ended before `cutoff`.
    static func detachedLeftovers(olderThan cutoff: String, on connection: PostgresConnection) throws -> [(table: String, month: String)] {
        try connection.execute("""
            SELECT c.relname, substring(c.relname FROM '^(audit_log_[0-9]{4}_[0-9]{2})')
            FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
              AND c.relname ~ '^audit_log_[0-9]{4}_[0-9]{2}(_detached(_[0-9]+)?)?$'
            ORDER BY 1
            """).rows.compactMap { row -> (table: String, month: String)? in
                guard let table = row[0], let month = row[1] else { return nil }
                guard String(month.dropFirst("audit_log_".count)) < cutoff else { return nil }
                return (table, month)
            }
    }
}

/// Writes through a `gzip -c > path` child process.
final class GzipFile {
    private let input: Int32
    private let pid: pid_t
    private let path: String

    init(path: String) throws {
        self.path = path
        // Never overwrites. 0600 whatever the umask: an archive holds every tenant's events.
        let output = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, PartitionArchive.fileMode)
        guard output >= 0 else { throw OperationsError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw OperationsError("cannot create a pipe for gzip") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_addclose(&actions, ends[1])
        var pid: pid_t = 0
        let words: [String] = ["gzip", "-c"]
        let arguments = words.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        let status = posix_spawnp(&pid, "gzip", &actions, nil, arguments, environ)
        close(ends[0])
        guard status == 0 else {
            close(ends[1])
            throw OperationsError("cannot start gzip: \(String(cString: strerror(status)))")
        }
        self.pid = pid
        input = ends[1]
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(input, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw OperationsError("writing to gzip failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    func finish() throws {
        close(input)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else { throw OperationsError("gzip failed writing \(path)") }
    }

    func abandon() {
        close(input)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        unlink(path)
    }
}
