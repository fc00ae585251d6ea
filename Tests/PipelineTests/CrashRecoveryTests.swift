import Foundation
import Pipeline
import Postgres
import TestSupport
import Testing

@Suite(.serialized, .timeLimit(.minutes(8))) struct CrashRecoveryTests {
    /// A backfill process killed with SIGKILL at random points, then re-run to completion: every
    /// line ends up exactly once in audit_log or audit_dead_letter.
    @Test func killedBackfillResumesExactlyOnce() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 60_000, months: 4, invalidRatio: 0.01)
        let binary = Shell.executable(named: "audit-ingest")
        let arguments = ["backfill", "--database-url", fixture.url, "--shards", "3", "--batch-size", "700",
                         "--no-progress", file.path]
        var generator = SeededGenerator(seed: 16)
        var kills = 0
        for round in 0..<3 {
            let before = try fixture.count("SELECT count(*) FROM audit_log")
            let child = try Shell.spawn(binary, arguments)
            // Wait until this run has committed something, then kill it at a random moment.
            waitUntil(interval: .milliseconds(20)) { try fixture.count("SELECT count(*) FROM audit_log") != before }
            randomPause(upTo: .milliseconds(300), using: &generator)
            child.signal(SIGKILL)
            let result = child.wait()
            if result.exitCode == 128 + SIGKILL { kills += 1 } else {
                #expect(result.exitCode == 0, "round \(round): \(result.output)")
                break  // it finished before the kill
            }
        }
        #expect(kills >= 1, "the test must have killed at least one run")
        let final = try Shell.run(binary, arguments)
        #expect(final.exitCode == 0, "\(final.output)")
        #expect(final.output.contains("lines read          \(file.lines)"))
        #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: try FileSource(path: file.path).baseName))
        #expect(try fixture.count("SELECT count(*) FROM (SELECT id FROM audit_log GROUP BY id HAVING count(*) > 1) d") == 0)
        #expect(try fixture.count("SELECT sum(audit_log_count) FROM tenant_metrics") == fixture.count("SELECT count(*) FROM audit_log"))
        // What each killed flush committed is sealed whole; what it did not commit left no seal.
        let verify = try Shell.run(binary, ["verify", "--database-url", fixture.url])
        #expect(verify.exitCode == 0, "\(verify.output)")
        #expect(verify.output.contains("\(try fixture.count("SELECT count(*) FROM audit_log")) rows"), "\(verify.output)")
    }

    /// PostgreSQL restarts in the middle of a backfill, politely or as a crash does: flushers retry
    /// until it is back, nothing is lost or stored twice, and no transient error is dead-lettered.
    @Test(arguments: [PrivateCluster.ShutdownMode.fast, .immediate])
    func postgresRestartMidBackfillLosesNothing(_ mode: PrivateCluster.ShutdownMode) throws {
        let cluster = try PrivateCluster()
        try TestDatabase.migrate(cluster.url)
        let fixture = try PipelineFixture(url: cluster.url)
        let file = try sampleFile(events: 80_000, months: 3)
        let engine = fixture.engine(shards: 2, batchSize: 1000)
        let outcome = Outcome()
        let runner = Thread {
            do { outcome.set(.success(try engine.ingest(try FileSource(path: file.path)))) } catch { outcome.set(.failure(error)) }
        }
        runner.start()
        waitUntil(interval: .milliseconds(20)) { try fixture.count("SELECT count(*) FROM audit_log") >= 5000 }
        try cluster.restart(mode)
        let summary = try outcome.wait(timeout: 240).get()
        #expect(summary.isComplete)
        #expect(summary.stored == 80_000)
        #expect(summary.deadLetteredTotal == 0)
        let check = try PostgresConnection(cluster.url)
        #expect(try check.execute("SELECT count(*), count(DISTINCT id) FROM audit_log").rows[0] == ["80000", "80000"])
        #expect(try check.execute("SELECT count(*) FROM audit_dead_letter").scalar == "0")
    }
}

/// The result of a run on another thread.
final class Outcome: @unchecked Sendable {  // guarded by condition
    private let condition = NSCondition()
    private var result: Result<IngestSummary, Error>?

    func set(_ value: Result<IngestSummary, Error>) {
        condition.lock()
        result = value
        condition.broadcast()
        condition.unlock()
    }

    func wait(timeout: TimeInterval) throws -> Result<IngestSummary, Error> {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while result == nil {
            guard condition.wait(until: deadline) else { throw TestDatabase.Unavailable(description: "the run did not finish in \(timeout) s") }
        }
        return result!
    }
}
