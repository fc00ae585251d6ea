import Foundation
import Operations
import Postgres
import TestSupport
import Testing

/// `partitions prune --archive`: no archived row is ever lost.
@Suite(.serialized, .timeLimit(.minutes(2))) struct RetentionTests {
    static let tenant = "00000000-0000-4000-8000-00000000000a"

    func database() throws -> (url: String, connection: PostgresConnection, month: String, firstDay: String) {
        let url = try TestDatabase.createMigrated(prefix: "retention")
        let connection = try PostgresConnection(url)
        let firstDay = try connection.execute("SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '20 months')::date::text").scalar!
        let month = "audit_log_" + firstDay.prefix(7).replacingOccurrences(of: "-", with: "_")
        try connection.query("SELECT ensure_month_partitions($1::date)", [firstDay])
        return (url, connection, month, firstDay)
    }

    func insert(_ count: Int, into firstDay: String, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            SELECT gen_random_uuid(), $1, 'late.event', 'INFO', $2::date + n * interval '1 hour' FROM generate_series(1, $3) n
            """, [Self.tenant, firstDay, String(count)])
    }

    func archiveDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("archive-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Data lines of a gzip'd CSV archive (its header excluded).
    func rows(in archive: String) throws -> Int {
        let result = try Shell.run("/bin/sh", ["-c", "gunzip -c '\(archive)' | tail -n +2 | wc -l"])
        return Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test func aMonthRecreatedByLateEventsIsArchivedBesideTheFirstArchive() throws {
        let (_, connection, month, firstDay) = try database()
        let directory = try archiveDirectory()
        try insert(3, into: firstDay, on: connection)
        let first = try Partitions.prune(olderThanMonths: 12, archiveDirectory: directory, dryRun: false, on: connection)
        #expect(first.dropped == [month])
        #expect(first.archived.map(\.rows) == [3])

        try connection.query("SELECT ensure_month_partitions($1::date)", [firstDay])  // a late event
        try insert(1, into: firstDay, on: connection)
        let second = try Partitions.prune(olderThanMonths: 12, archiveDirectory: directory, dryRun: false, on: connection)
        #expect(second.archived.map(\.rows) == [1])
        #expect(second.archives != first.archives, "a new name, not the first archive overwritten")
        #expect(try rows(in: first.archives[0]) == 3)
        #expect(try rows(in: second.archives[0]) == 1)

        for archive in first.archived + second.archived {
            let check = try Shell.run("/bin/sh", ["-c", "cd '\(directory)' && sha256sum -c '\(archive.file).sha256'"])
            #expect(check.exitCode == 0, "\(check.output)")
            let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: archive.file + ".manifest.json"))) as? [String: Any]
            #expect(manifest?["rows"] as? Int == archive.rows)
            #expect(manifest?["sha256"] as? String == archive.sha256)
            #expect(manifest?["table"] as? String == month)
            for file in [archive.file, archive.file + ".sha256", archive.file + ".manifest.json"] {
                let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(file): every tenant's events, its owner's only (umask \(String(Self.umask, radix: 8)))")
            }
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(!names.contains { $0.hasSuffix(".partial") }, "\(names)")
    }

    /// The process's umask (read by setting it back).
    static var umask: mode_t {
        let current = Foundation.umask(0o022)
        Foundation.umask(current)
        return current
    }

    @Test func pruneFinishesTablesAnEarlierPruneDetached() throws {
        let (_, connection, month, firstDay) = try database()
        let directory = try archiveDirectory()
        try insert(5, into: firstDay, on: connection)
        // What an earlier version left when archiving failed: the month detached under its own name.
        try connection.execute("ALTER TABLE audit_log DETACH PARTITION \(month)")
        // Late events for that month no longer fail: a fresh month is made beside it.
        try connection.query("SELECT ensure_month_partitions($1::date)", [firstDay])
        try insert(2, into: firstDay, on: connection)
        #expect(try connection.execute("SELECT count(*) FROM \(month)_detached").scalar == "5")

        let dry = try Partitions.prune(olderThanMonths: 12, archiveDirectory: nil, dryRun: true, on: connection)
        #expect(dry.dropped == [month, month])
        let result = try Partitions.prune(olderThanMonths: 12, archiveDirectory: directory, dryRun: false, on: connection)
        #expect(result.archived.map(\.rows).sorted() == [2, 5])
        #expect(try connection.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '\(month)%' AND relkind = 'r'").scalar == "0")
        #expect(try Partitions.prune(olderThanMonths: 12, archiveDirectory: directory, dryRun: false, on: connection).dropped.isEmpty)
    }
}
