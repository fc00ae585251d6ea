import Foundation
import Postgres
import TestSupport
import Testing

/// Tenants' own rules (migration 0028): a tenant's retention deletes its old events from months
/// other tenants keep, while ingest runs, attested so that `verify` still accounts every sealed
/// row; legal holds keep what they cover from that and from `partitions prune`.
extension CheckpointTests {
    func cli(_ fixture: PipelineFixture, _ arguments: [String]) throws -> Shell.Result {
        try Shell.run(binary, arguments + ["--database-url", fixture.url])
    }

    /// Tenants by their stored events, most first.
    func tenantsByRows(_ fixture: PipelineFixture) throws -> [String] {
        try fixture.connection.execute("SELECT tenant_id::text FROM audit_log GROUP BY 1 ORDER BY count(*) DESC, 1").rows.compactMap { $0[0] }
    }

    @Test func aTenantsRetentionDeletesOnlyItsOldEventsWhileIngestRunsAndVerifyAccountsForEveryRow() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("retention")
        try backfill(fixture, events: 900, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let tenants = try tenantsByRows(fixture)
        let (expiring, held, ranged) = (tenants[0], tenants[1], tenants[2])
        func rows(_ tenant: String, _ condition: String = "true") throws -> Int {
            try fixture.count("SELECT count(*) FROM audit_log WHERE tenant_id = '\(tenant)' AND \(condition)")
        }
        // The middle one of the months this tenant has events in.
        let months = try fixture.connection.execute("""
            SELECT DISTINCT date_trunc('month', "timestamp" AT TIME ZONE 'UTC')::date::text FROM audit_log
            WHERE tenant_id = '\(ranged)' ORDER BY 1
            """).rows.compactMap { $0[0] }
        try #require(months.count == 3, "\(months)")
        let inHeldMonth = """
            "timestamp" >= '\(months[1])'::timestamptz AT TIME ZONE 'UTC' AND "timestamp" < ('\(months[1])'::date + interval '1 month') AT TIME ZONE 'UTC'
            """
        let lastFirstBatch = try fixture.count("SELECT max(id) FROM audit_batch")
        let before = (total: try fixture.count("SELECT count(*) FROM audit_log"), expiring: try rows(expiring), held: try rows(held),
                      ranged: try rows(ranged), rangedKept: try rows(ranged, inHeldMonth))
        #expect(before.rangedKept > 0 && before.rangedKept < before.ranged)

        // Every sample event is at least two days old: one day's retention expires them all.
        for tenant in [expiring, held, ranged] {
            let set = try cli(fixture, ["tenant", "retention", "set", "--tenant", tenant, "--days", "1"])
            #expect(set.exitCode == 0 && set.output.contains("\"days\" : 1"), "\(set.output)")
        }
        let placed = try cli(fixture, ["tenant", "hold", "place", "--tenant", held, "--reason", "matter 2026-114"])
        #expect(placed.exitCode == 0 && placed.output.contains("matter 2026-114"), "\(placed.output)")
        let ranging = try cli(fixture, ["tenant", "hold", "place", "--tenant", ranged, "--reason", "one month",
                                        "--from", months[1] + "T00:00:00Z", "--until", "\(months[1].prefix(8))01T00:00:00Z"])
        #expect(ranging.exitCode == 64 && ranging.output.contains("--from must be before --until"), "an empty range: \(ranging.output)")
        let end = try fixture.connection.query("SELECT (($1::date + interval '1 month')::date)::text", [months[1]]).scalar!
        let ranged2 = try cli(fixture, ["tenant", "hold", "place", "--tenant", ranged, "--reason", "one month",
                                        "--from", months[1] + "T00:00:00Z", "--until", end + "T00:00:00Z"])
        #expect(ranged2.exitCode == 0, "\(ranged2.output)")
        let endless = try cli(fixture, ["tenant", "hold", "place", "--tenant", ranged, "--reason", "r", "--from", "infinity"])
        #expect(endless.exitCode == 64 && endless.output.contains("not infinity"), "\(endless.output)")

        // A group of the first file, sealed for the expiring tenant, loses a row behind verify's
        // back: retention must leave that group for verify to report, not erase the evidence.
        let tampered = try #require(try fixture.connection.execute("""
            SELECT batch_id::text FROM audit_log WHERE tenant_id = '\(expiring)' GROUP BY batch_id HAVING count(*) > 1 ORDER BY batch_id LIMIT 1
            """).scalar)
        try fixture.connection.execute("""
            DELETE FROM audit_log WHERE id = (SELECT id FROM audit_log WHERE tenant_id = '\(expiring)' AND batch_id = \(tampered) LIMIT 1)
            """)

        let dry = try cli(fixture, ["tenant", "retention", "apply", "--dry-run"])
        #expect(dry.exitCode == 0 && dry.output.contains("\"dryRun\" : true"), "\(dry.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == before.total - 1, "a dry run deletes nothing")
        let wouldGo = try Self.removedRows(dry.output)

        // Ingest goes on while the retention runs: a second file of the same tenants.
        let second = try sampleFile(events: 3000, invalidRatio: 0.05, seed: 2, tenantSeed: 42)
        let ingest = try Shell.spawn(binary, ["backfill", "--no-progress", "--batch-size", "50", "--shards", "2",
                                              "--database-url", fixture.url, second.path])
        #expect(waitUntil(timeout: .seconds(30), interval: .milliseconds(5)) {
            try fixture.count("SELECT count(*) FROM audit_log") > before.total
        }, "the second backfill is storing")
        let applied = try cli(fixture, ["tenant", "retention", "apply"])
        #expect(applied.exitCode == 0, "\(applied.output)")
        let ingested = ingest.wait(timeout: 120)
        #expect(ingested.exitCode == 0, "\(ingested.output)")
        let secondStored = try fixture.count("SELECT count(*) FROM audit_log WHERE batch_id IN (SELECT id FROM audit_batch WHERE log_index IS NULL)")
        let secondDead = try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE batch_id IN (SELECT id FROM audit_batch WHERE log_index IS NULL)")
        #expect(secondStored + secondDead == second.lines, "the second file, all stored or dead-lettered: nothing of it deleted")

        // What went: every event of the first file of the expiring tenant, and the ranged
        // tenant's outside its held month. What stayed: the held tenant's, the held month, other
        // tenants', and whatever the second backfill stored (its batches were not yet in the log).
        let firstFile = "batch_id IN (SELECT id FROM audit_batch WHERE log_index IS NOT NULL)"
        let tamperedLeft = try rows(expiring, "batch_id = \(tampered)")
        #expect(tamperedLeft > 0, "the tampered group is kept")
        #expect(try rows(expiring, firstFile) == tamperedLeft)
        #expect(try Self.removedRows(applied.output) == wouldGo, "the dry run said what went: \(dry.output)")
        #expect(wouldGo == before.expiring - 1 - tamperedLeft + before.ranged - before.rangedKept)
        #expect(applied.output.contains("\"keptNotAsSealed\" : 1"), "\(applied.output)")
        #expect(try rows(held, firstFile) == before.held)
        #expect(try rows(ranged, firstFile) == before.rangedKept)
        #expect(try rows(ranged, firstFile + " AND NOT (\(inHeldMonth))") == 0)
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE \(firstFile) AND tenant_id NOT IN ('\(expiring)', '\(held)', '\(ranged)')")
                == before.total - before.expiring - before.held - before.ranged)
        #expect(try rows(expiring, "batch_id IN (SELECT id FROM audit_batch WHERE log_index IS NULL)") > 0,
                "the second file's events of the tenant are kept until their batches are in the log")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(applied.output.utf8)) as? [String: Any])
        let results = report["months"] as? [[String: Any]] ?? []
        #expect(results.contains { $0["tenantID"] as? String == held && ($0["keptByHold"] as? Int ?? 0) > 0 && ($0["rows"] as? Int) == 0 },
                "\(applied.output)")
        let operations = try fixture.count("SELECT count(*) FROM audit_operation WHERE kind = 'retention'")
        #expect(operations == 5, "one per month of the expiring tenant, and the ranged one's two other months: \(applied.output)")

        // Signed into the log; verify accounts every removed row against those records, and still
        // names the tampered group.
        let signed = try checkpoint(fixture, pair.key)
        #expect(signed.exitCode == 0, "\(signed.output)")
        let reported = try verify(fixture, ["--public-key-file", pair.pub, "--checkpoint-dir", directory.path])
        #expect(reported.exitCode == 1 && reported.output.contains("row missing") && reported.output.contains("batch \(tampered)"), "\(reported.output)")
        let removedGroups = results.reduce(0) { $0 + ($1["groups"] as? Int ?? 0) }
        #expect(reported.output.contains("tenant retention: \(removedGroups) groups"), "\(reported.output)")

        // Now that they are in the log, the second file's expired events go too, but not the held ones.
        #expect(try cli(fixture, ["tenant", "retention", "apply"]).exitCode == 0)
        #expect(try rows(expiring) == tamperedLeft, "all but the tampered group")
        #expect(try rows(held, "batch_id <= \(lastFirstBatch)") == before.held)
    }

    /// The rows an apply report says it removed.
    static func removedRows(_ output: String) throws -> Int {
        let report = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        return (report?["months"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["rows"] as? Int ?? 0) }
    }

    @Test func pruneKeepsAMonthALegalHoldCoversAndSaysWhy() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("hold")
        try backfill(fixture, events: 600, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let held = try tenantsByRows(fixture)[0]
        // While a removal runs (here: its lock, taken by another session), placing a hold waits
        // for it, so it never lands between a prune's detach and its drop.
        let removal = try PostgresConnection(fixture.url)
        try removal.execute("SELECT pg_advisory_lock(7022629598042026613)")
        let placing = try Shell.spawn(binary, ["tenant", "hold", "place", "--tenant", held, "--reason", "litigation hold L-7",
                                               "--database-url", fixture.url])
        #expect(waitUntil(timeout: .seconds(20)) {
            try fixture.count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 1
        }, "the hold waits for the removal")
        #expect(try fixture.count("SELECT count(*) FROM tenant_legal_hold") == 0)
        try removal.execute("SELECT pg_advisory_unlock(7022629598042026613)")
        let placed = placing.wait(timeout: 30)
        #expect(placed.exitCode == 0, "\(placed.output)")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(placed.output.utf8)) as? [String: Any])?["id"] as? Int,
                              "\(placed.output)")
        let rows = try fixture.count("SELECT count(*) FROM audit_log")

        let kept = try prune(fixture, archive: nil)
        #expect(kept.exitCode == 0, "\(kept.output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(kept.output.utf8)) as? [String: Any])
        let keptMonths = (report["kept"] as? [[String: Any]] ?? []).compactMap { $0["month"] as? String }
        #expect(!keptMonths.isEmpty && (report["dropped"] as? [String])?.isEmpty == true, "\(kept.output)")
        #expect(kept.output.contains("litigation hold L-7"), "the report says why")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == rows, "nothing was pruned")

        #expect(try cli(fixture, ["tenant", "hold", "release", String(id)]).exitCode == 0)
        let again = try cli(fixture, ["tenant", "hold", "release", String(id)])
        #expect(again.exitCode == 2 && again.output.contains("no hold \(id) is in place"), "\(again.output)")
        let listed = try cli(fixture, ["tenant", "hold", "list", "--all"])
        #expect(listed.output.contains("\"releasedBy\""), "a released hold stays listed: \(listed.output)")
        let pruned = try prune(fixture, archive: nil)
        let dropped = (try JSONSerialization.jsonObject(with: Data(pruned.output.utf8)) as? [String: Any])?["dropped"] as? [String]
        #expect(dropped == keptMonths, "\(pruned.output)")
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        #expect(try verify(fixture, ["--public-key-file", pair.pub, "--checkpoint-dir", directory.path]).exitCode == 0)
    }
}
