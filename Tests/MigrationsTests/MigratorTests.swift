import Foundation
import Migrations
import Postgres
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(3))) struct MigratorTests {
    let migrations: [Migration]

    init() throws {
        migrations = try Migration.load(from: TestDatabase.migrationsDirectory)
    }

    @Test func loadsTheProjectsMigrationsInOrder() {
        #expect(migrations.map(\.version) == migrations.map(\.version).sorted())
        #expect(migrations.count >= 4)
        #expect(migrations.first?.fileName == "0001_tenants_users_items.sql")
    }

    @Test func checksumIsSHA256OfTheFile() throws {
        let directory = try temporaryDirectory(files: ["0001_abc.sql": "abc"])
        let loaded = try Migration.load(from: directory)
        #expect(loaded[0].checksum == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(loaded[0].name == "abc")
    }

    @Test func freshApplyThenIdempotentRerun() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        let migrator = Migrator(migrations: migrations)
        #expect(try migrator.apply(on: connection).count == migrations.count)
        #expect(try migrator.apply(on: connection).isEmpty)
        let statuses = try migrator.status(on: connection)
        #expect(statuses.allSatisfy { $0.state == .applied })
        #expect(try connection.execute("SELECT count(*) FROM schema_migrations").scalar == "\(migrations.count)")
    }

    @Test func statusBeforeAnythingIsAppliedIsAllPending() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        let statuses = try Migrator(migrations: migrations).status(on: connection)
        #expect(statuses.count == migrations.count)
        #expect(statuses.allSatisfy { $0.state == .pending })
    }

    @Test func concurrentRunsApplyEachMigrationOnce() throws {
        let url = try TestDatabase.create()
        let results = ResultBox()
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            do {
                let connection = try PostgresConnection(url)
                let applied = try Migrator(migrations: migrations).apply(on: connection)
                results.add(applied.count)
            } catch {
                results.fail("\(error)")
            }
        }
        #expect(results.errors.isEmpty, "\(results.errors)")
        #expect(results.counts.sorted() == [0, 0, migrations.count])
        let connection = try PostgresConnection(url)
        #expect(try connection.execute("SELECT count(*), count(DISTINCT version) FROM schema_migrations").rows[0]
                == ["\(migrations.count)", "\(migrations.count)"])
    }

    @Test func editedAppliedMigrationIsRefusedNamingTheFile() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        try Migrator(migrations: migrations).apply(on: connection)
        var edited = migrations
        let original = edited[1]
        edited[1] = Migration(version: original.version, name: original.name,
                              sql: original.sql + "\n-- an edit\n", fileName: original.fileName)
        let error = try #require(throws: MigrationError.self) {
            try Migrator(migrations: edited).apply(on: connection)
        }
        #expect(error.code == .checksumMismatch)
        #expect(error.message.contains(original.fileName))
        #expect(try Migrator(migrations: edited).status(on: connection)[1].state == .changed)
    }

    @Test func aCommentEditListedInCommentEditsIsAcceptedAndRecorded() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        let released = try temporaryDirectory(files: ["0001_t.sql": "-- see README\nCREATE TABLE t (x int);\n"])
        try Migrator(migrations: try Migration.load(from: released)).apply(on: connection)
        let releasedChecksum = try Migration.load(from: released)[0].checksum
        let edited = try temporaryDirectory(files: ["0001_t.sql": "-- see docs/t.md\nCREATE TABLE t (x int);\n"])
        // Unlisted, the edit is refused as any other.
        #expect(throws: MigrationError.self) { try Migrator(migrations: try Migration.load(from: edited)).apply(on: connection) }
        try Data("# comment\n0001 \(releasedChecksum) a comment names another page\n".utf8)
            .write(to: edited.appendingPathComponent("comment-edits"))
        let migrator = Migrator(migrations: try Migration.load(from: edited))
        #expect(try migrator.status(on: connection).map(\.state) == [.applied])
        #expect(try migrator.apply(on: connection).isEmpty)
        #expect(try connection.execute("SELECT checksum FROM schema_migrations").scalar == migrator.migrations[0].checksum)
    }

    @Test func theProjectsCommentEditsNameOnlyItsMigrations() throws {
        let edited = migrations.filter { !$0.formerChecksums.isEmpty }
        #expect(edited.map(\.version) == [7, 10, 11])
        #expect(edited.allSatisfy { !$0.formerChecksums.contains($0.checksum) })
    }

    @Test func failingMigrationIsRolledBackAndReported() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        let broken = [
            Migration(version: 1, name: "ok", sql: "CREATE TABLE a (n int);", fileName: "0001_ok.sql"),
            Migration(version: 2, name: "broken", sql: "CREATE TABLE b (n int); SELECT nonsense FROM nowhere;",
                      fileName: "0002_broken.sql"),
        ]
        let error = try #require(throws: MigrationError.self) { try Migrator(migrations: broken).apply(on: connection) }
        #expect(error.code == .migrationFailed)
        #expect(error.message.contains("0002_broken.sql"))
        #expect(error.message.contains("42P01"))
        #expect(try connection.execute("SELECT to_regclass('a') IS NOT NULL, to_regclass('b') IS NULL").rows[0] == ["t", "t"])
        #expect(try connection.execute("SELECT string_agg(version::text, ',') FROM schema_migrations").scalar == "1")
    }

    /// A new database migrated up to (not including) `version`, with tenant Acme and last month's
    /// partition (each upgrade test then inserts rows there and applies the rest).
    private func databaseBefore(version: Int) throws -> PostgresConnection {
        let connection = try PostgresConnection(try TestDatabase.create())
        try Migrator(migrations: migrations.filter { $0.version < version }).apply(on: connection)
        try connection.execute("""
            SELECT ensure_month_partitions(date_trunc('month', now())::date - 20);
            INSERT INTO tenant (id, name, code) VALUES ('\(Self.acme)', 'Acme', 'acme');
            """)
        return connection
    }

    private static let acme = "0000000a-0000-4000-8000-000000000000"
    private static let globex = "0000000b-0000-4000-8000-000000000000"

    /// 0016 rebuilds the metadata index as jsonb_path_ops on a database that holds rows: every
    /// month gets the new index, and a containment search finds the same rows through it.
    @Test func theMetadataIndexIsRebuiltOnADatabaseWithRows() throws {
        let connection = try databaseBefore(version: 16)
        try connection.execute("""
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp", custom_metadata)
            SELECT gen_random_uuid(), '\(Self.acme)', 'test.event', 'INFO',
                   date_trunc('month', now()) - interval '20 days' + n * interval '1 minute',
                   jsonb_build_object('region', CASE WHEN n % 100 = 0 THEN 'eu-north-1' ELSE 'us-east-1' END, 'n', n)
            FROM generate_series(1, 2000) AS n;
            """)
        try Migrator(migrations: migrations).apply(on: connection)
        let definitions = try connection.execute("""
            SELECT pg_get_indexdef(i.indexrelid) FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid
            WHERE h.inhparent = 'audit_log'::regclass AND pg_get_indexdef(i.indexrelid) LIKE '%custom_metadata%'
            """).rows.compactMap { $0[0] }
        #expect(!definitions.isEmpty && definitions.allSatisfy { $0.contains("gin (custom_metadata jsonb_path_ops)") }, "\(definitions)")
        try connection.execute("SET enable_seqscan = off")
        let plan = try connection.execute(#"EXPLAIN SELECT count(*) FROM audit_log WHERE custom_metadata @> '{"region": "eu-north-1"}'"#)
            .rows.compactMap { $0[0] }.joined(separator: "\n")
        #expect(plan.contains("Bitmap Index Scan on") && plan.contains("custom_metadata"), "\(plan)")
        #expect(try connection.execute(#"SELECT count(*) FROM audit_log WHERE custom_metadata @> '{"region": "eu-north-1"}'"#).scalar == "20")
    }

    /// 0017 orders the primary key by time on a database that holds rows: every month gets the
    /// new key and loses the index the key replaces, no row is lost, and uniqueness is what it was
    /// (an id once per tenant and timestamp).
    @Test func thePrimaryKeyIsReorderedOnADatabaseWithRows() throws {
        let connection = try databaseBefore(version: 17)
        let tenant = Self.acme, event = "0000000e-0000-4000-8000-000000000000"
        try connection.execute("""
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            SELECT gen_random_uuid(), '\(tenant)', 'test.event', 'INFO', date_trunc('month', now()) - n * interval '25 minutes'
            FROM generate_series(1, 1000) AS n;
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            VALUES ('\(event)', '\(tenant)', 'test.event', 'INFO', date_trunc('month', now()) - interval '1 day');
            """)
        try Migrator(migrations: migrations).apply(on: connection)
        let keys = try connection.execute("""
            SELECT pg_get_constraintdef(c.oid) FROM pg_inherits h JOIN pg_constraint c ON c.conrelid = h.inhrelid
            WHERE h.inhparent = 'audit_log'::regclass AND c.contype = 'p'
            """).rows.compactMap { $0[0] }
        #expect(!keys.isEmpty && keys.allSatisfy { $0 == #"PRIMARY KEY (tenant_id, "timestamp", id)"# }, "\(keys)")
        let byTimeOnly = try connection.execute("""
            SELECT count(*) FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid
            WHERE h.inhparent = 'audit_log'::regclass AND NOT i.indisprimary
              AND pg_get_indexdef(i.indexrelid) LIKE '%(tenant_id, "timestamp")'
            """).scalar
        #expect(byTimeOnly == "0", "the key's leading columns replace the (tenant_id, timestamp) index")
        #expect(try connection.execute("SELECT count(*) FROM audit_log").scalar == "1001")
        let duplicate = #expect(throws: PostgresError.self) {
            try connection.execute("""
                INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
                VALUES ('\(event)', '\(tenant)', 'test.event', 'INFO', date_trunc('month', now()) - interval '1 day')
                """)
        }
        #expect(duplicate?.sqlState == "23505", "\(String(describing: duplicate))")
        try connection.execute("""
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            VALUES ('\(event)', '\(tenant)', 'test.event', 'INFO', date_trunc('month', now()) - interval '2 days')
            """)
        #expect(try connection.execute("SELECT count(*) FROM audit_log WHERE id = '\(event)'").scalar == "2")
    }

    /// 0032 replaces the (tenant_id, severity) composite and the ERROR-and-above partial index by
    /// one partial index of WARNING and above, on a database that holds rows: every month gets it,
    /// and a search for a minimum severity finds exactly its events through it.
    @Test func theSeverityIndexesAreReplacedOnADatabaseWithRows() throws {
        let connection = try databaseBefore(version: 32)
        try connection.execute("""
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            SELECT gen_random_uuid(), '\(Self.acme)', 'test.event',
                   (ARRAY['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'])[1 + n % 5],
                   date_trunc('month', now()) - interval '20 days' + n * interval '1 minute'
            FROM generate_series(1, 2000) AS n;
            """)
        try Migrator(migrations: migrations).apply(on: connection)
        let severityIndexes = try connection.execute("""
            SELECT pg_get_indexdef(i.indexrelid) FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid
            WHERE h.inhparent = 'audit_log'::regclass AND pg_get_indexdef(i.indexrelid) LIKE '%severity%'
            """).rows.compactMap { $0[0] }
        let months = try connection.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass").scalar
        #expect(String(severityIndexes.count) == months, "one per month: \(severityIndexes)")
        #expect(severityIndexes.allSatisfy {
            $0.contains(#"(tenant_id, "timestamp") WHERE (severity = ANY (ARRAY['WARNING'::text, 'ERROR'::text, 'CRITICAL'::text]))"#)
        }, "\(severityIndexes)")
        try connection.execute("SET enable_seqscan = off")
        let search = #"SELECT count(*) FROM audit_log WHERE tenant_id = '\#(Self.acme)' AND severity = ANY ('{WARNING,ERROR,CRITICAL}')"#
        let plan = try connection.execute("EXPLAIN " + search).rows.compactMap { $0[0] }.joined(separator: "\n")
        // The month copies of the new index, by inheritance: the old index's copies had names of
        // the same pattern.
        let monthCopies = try connection.execute("""
            SELECT h.inhrelid::regclass::text FROM pg_inherits h WHERE h.inhparent = 'idx_audit_high_severity'::regclass
            """).rows.compactMap { $0[0] }
        #expect(String(monthCopies.count) == months)
        #expect(monthCopies.contains { plan.contains(" \($0) ") }, "\(plan) reads none of \(monthCopies)")
        #expect(try connection.execute(search).scalar == "1200")
    }

    /// 0033 keys "user" and item by (tenant_id, id) on a database that holds them: the rows stay,
    /// deleting a user clears only its items' owner, and an owner of another tenant is refused.
    @Test func usersAndItemsAreKeyedByTenantOnADatabaseWithRows() throws {
        let connection = try databaseBefore(version: 33)
        let owner = "0000000a-0000-4000-8000-000000000001"
        try connection.execute("""
            INSERT INTO tenant (id, name, code) VALUES ('\(Self.globex)', 'Globex', 'globex');
            INSERT INTO "user" (id, tenant_id, email) VALUES ('\(owner)', '\(Self.acme)', 'owner@acme.test');
            INSERT INTO "user" (tenant_id, email) VALUES ('\(Self.globex)', 'other@globex.test');
            INSERT INTO item (tenant_id, owner_id, title) SELECT '\(Self.acme)', '\(owner)', 'item ' || n FROM generate_series(1, 3) n;
            """)
        try Migrator(migrations: migrations).apply(on: connection)
        let keys = try connection.execute("""
            SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid IN ('"user"'::regclass, 'item'::regclass) AND contype IN ('p', 'f') AND conname <> 'user_tenant_id_fkey'
              AND conname <> 'item_tenant_id_fkey' ORDER BY 1, 2
            """).rows
        #expect(keys == [
            ["\"user\"", "PRIMARY KEY (tenant_id, id)"],
            ["item", "FOREIGN KEY (tenant_id, owner_id) REFERENCES \"user\"(tenant_id, id) ON DELETE SET NULL (owner_id)"],
            ["item", "PRIMARY KEY (tenant_id, id)"],
        ])
        let otherTenantsUser = try #require(try connection.execute("SELECT id FROM \"user\" WHERE tenant_id = '\(Self.globex)'").scalar)
        let refused = try #require(throws: PostgresError.self) {
            try connection.execute("INSERT INTO item (tenant_id, owner_id, title) VALUES ('\(Self.acme)', '\(otherTenantsUser)', 'x')")
        }
        #expect(refused.sqlState == "23503", "\(refused)")
        try connection.execute("DELETE FROM \"user\" WHERE id = '\(owner)'")
        let items = try connection.execute("SELECT count(*), count(owner_id), min(tenant_id::text) FROM item").rows
        #expect(items == [["3", "0", Self.acme]])
    }

    /// An item that names another tenant's user as its owner stops 0033 before it changes
    /// anything, with the count and how to find them; once cleared, migrate goes on.
    @Test func anItemOwnedAcrossTenantsStopsTheKeyMigration() throws {
        let connection = try databaseBefore(version: 33)
        try connection.execute("""
            INSERT INTO tenant (id, name, code) VALUES ('\(Self.globex)', 'Globex', 'globex');
            INSERT INTO "user" (tenant_id, email) VALUES ('\(Self.globex)', 'other@globex.test');
            INSERT INTO item (tenant_id, owner_id, title) SELECT '\(Self.acme)', id, 'crossing' FROM "user";
            """)
        let error = try #require(throws: MigrationError.self) { try Migrator(migrations: migrations).apply(on: connection) }
        #expect(error.code == .migrationFailed)
        #expect(error.message.contains("0033_user_and_item_keys_by_tenant.sql"), "\(error.message)")
        #expect(error.message.contains("1 item(s) have an owner in another tenant"), "\(error.message)")
        #expect(try connection.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'item_pkey'").scalar
                == "PRIMARY KEY (id)")
        try connection.execute("UPDATE item SET owner_id = NULL WHERE title = 'crossing'")
        try Migrator(migrations: migrations).apply(on: connection)
        #expect(try connection.execute("SELECT max(version) FROM schema_migrations").scalar == String(migrations.last!.version))
    }

    @Test func badFileNamesAreRefused() throws {
        let directory = try temporaryDirectory(files: ["create_things.sql": "SELECT 1"])
        let error = try #require(throws: MigrationError.self) { try Migration.load(from: directory) }
        #expect(error.code == .invalidFileName)
        #expect(error.message.contains("create_things.sql"))
    }

    @Test func commandLineMigrateIsIdempotentAndMasksPasswords() throws {
        let url = try TestDatabase.create()
        let binary = Shell.executable(named: "audit-ingest")
        let directory = TestDatabase.migrationsDirectory.path
        let first = try Shell.run(binary, ["migrate", "--database-url", url, "--migrations-dir", directory])
        #expect(first.exitCode == 0, "\(first.output)")
        #expect(first.output.contains("applied \(migrations.count) migration(s)"))
        let second = try Shell.run(binary, ["migrate", "--database-url", url, "--migrations-dir", directory])
        #expect(second.output.contains("schema is up to date"))
        let status = try Shell.run(binary, ["migrate", "status", "--database-url", url, "--migrations-dir", directory])
        #expect(status.output.contains("up to date"))

        let unreachable = try Shell.run(binary, ["migrate", "--database-url",
                                                 "postgresql://ops:hunter2@127.0.0.1:1/audit?connect_timeout=2",
                                                 "--migrations-dir", directory])
        #expect(unreachable.exitCode != 0)
        #expect(!unreachable.output.contains("hunter2"))
        #expect(unreachable.output.contains("ops:***@127.0.0.1:1"))
    }

    private func temporaryDirectory(files: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, text) in files {
            try Data(text.utf8).write(to: directory.appendingPathComponent(name))
        }
        return directory
    }
}

final class ResultBox: @unchecked Sendable {  // guarded by lock
    private let lock = NSLock()
    private(set) var counts: [Int] = []
    private(set) var errors: [String] = []
    func add(_ count: Int) { lock.lock(); counts.append(count); lock.unlock() }
    func fail(_ message: String) { lock.lock(); errors.append(message); lock.unlock() }
}
