import AuditRead
import Foundation
import Postgres
import Synchronization
import TestSupport
import Testing

/// The feed hands a poller every event once, in transaction order, whatever the events'
/// timestamps and whatever order concurrent transactions commit in.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EventFeedTests {
    typealias Event = ReadFixture.Event

    /// A poller of one tenant's feed, as a SIEM would run it.
    final class Poller {
        let tenant: String
        let connection: PostgresConnection
        let signer: CursorSigner
        var cursor: String?
        var seen: [String] = []

        init(url: String, tenant: String) throws {
            self.tenant = tenant
            connection = try PostgresConnection(url)
            signer = try CursorSigner.load(on: connection)
        }

        /// One poll; returns the ids it got.
        @discardableResult
        func poll(limit: Int = 1000) throws -> [String] {
            var parameters = ["limit": String(limit)]
            parameters["after"] = cursor
            let feed = try EventFeed(tenantID: tenant, parameters: parameters, signer: signer)
            let page = try ReaderSession.run(tenantID: tenant, on: connection) { try feed.page(on: $0, signer: signer) }
            let ids = page.events.map { event in
                ((try? JSONSerialization.jsonObject(with: Data(event.utf8))) as? [String: Any])?["id"] as? String ?? "?"
            }
            seen += ids
            cursor = page.nextCursor
            return ids
        }

        /// Polls until `count` events were seen in all (or 60 s passed). Transactions of other
        /// test suites on the same cluster may hold the feed back for a while.
        func pollUntil(count: Int) throws {
            waitUntil(interval: .milliseconds(20)) {
                try poll()
                return seen.count >= count
            }
        }
    }

    /// `from=end` gives a cursor at the feed's end: a live tail sees only what is stored after it,
    /// late timestamps included, without reading what was there.
    @Test func aTailFromTheEndSeesOnlyWhatIsStoredAfterIt() throws {
        let fixture = try ReadFixture()
        let before = (0..<5).map { Event(timestamp: "2026-06-0\($0 + 1)T00:00:00Z") }
        try fixture.insert(before)
        // Once a poller from the beginning has them, the horizon is past them (it never goes back).
        let everything = try Poller(url: fixture.url, tenant: ReadFixture.tenantA)
        try everything.pollUntil(count: 5)
        let tail = try Poller(url: fixture.url, tenant: ReadFixture.tenantA)
        let end = try EventFeed(tenantID: ReadFixture.tenantA, parameters: ["from": "end"], signer: tail.signer)
        let start = try ReaderSession.run(tenantID: ReadFixture.tenantA, on: tail.connection) { try end.page(on: $0, signer: tail.signer) }
        #expect(start.events.isEmpty && start.nextCursor != nil)
        tail.cursor = start.nextCursor
        let after = [Event(timestamp: "2026-07-01T00:00:00Z"), Event(timestamp: "2026-01-01T00:00:00Z")]  // one late
        try fixture.insert(after)
        try tail.pollUntil(count: 2)
        #expect(Set(tail.seen) == Set(after.map(\.id)) && tail.seen.count == 2, "\(tail.seen)")
        #expect(throws: ReadError.self) {
            try EventFeed(tenantID: ReadFixture.tenantA, parameters: ["from": "end", "after": start.nextCursor!], signer: tail.signer)
        }
        #expect(throws: ReadError.self) { try EventFeed(tenantID: ReadFixture.tenantA, parameters: ["from": "start"], signer: tail.signer) }
    }

    @Test func aTransactionCommittingAfterALaterNumberedOneIsNotSkipped() throws {
        let fixture = try ReadFixture()
        let e0 = Event(timestamp: "2026-06-01T00:00:00Z")
        try fixture.insert([e0])
        let poller = try Poller(url: fixture.url, tenant: ReadFixture.tenantA)
        try poller.pollUntil(count: 1)
        #expect(poller.seen == [e0.id])

        let early = try PostgresConnection(fixture.url), late = try PostgresConnection(fixture.url)
        let e1 = Event(timestamp: "2026-01-02T00:00:00Z")  // older than e0: a late event
        let e2 = Event(timestamp: "2026-06-02T00:00:00Z")
        try early.execute("BEGIN")
        try ReadFixture.insert(e1, on: early)
        try late.execute("BEGIN")
        try ReadFixture.insert(e2, on: late)
        let xids = try [early, late].map { try $0.execute("SELECT pg_current_xact_id()::text").scalar.flatMap { UInt64($0) } ?? 0 }
        #expect(xids[0] < xids[1])
        try late.execute("COMMIT")  // the later-numbered transaction commits first

        #expect(try fixture.owner.execute("SELECT count(*) FROM audit_log WHERE id = '\(e2.id)'").scalar == "1", "e2 is committed")
        let cursorBefore = poller.cursor
        #expect(try poller.poll().isEmpty, "e2 is held back while e1's transaction may still commit before it")
        #expect(poller.cursor == cursorBefore)

        try early.execute("COMMIT")
        try poller.pollUntil(count: 3)
        #expect(poller.seen == [e0.id, e1.id, e2.id])
    }

    /// `audit-ingest backfill` (two shards, small batches: many concurrent flush transactions)
    /// and writers of late events (old timestamps; each commits a later transaction before an
    /// earlier one) run while a poller follows the feed. The poller ends up with every event
    /// exactly once, in (transaction, id) order.
    @Test func aPollerSeesEveryEventOnceUnderConcurrentIngestAndLateEvents() throws {
        let fixture = try ReadFixture()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("feed-\(UUID().uuidString).ndjson").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let generated = try fixture.cli(["generate", "--events", "20000", "--tenants", "1", "--months", "3", "--seed", "7",
                                         "--register-tenants", "-o", file])
        #expect(generated.exitCode == 0, "\(generated.output)")
        let tenant = try #require(try fixture.owner.execute("SELECT id::text FROM tenant WHERE code = 'sample-7-1'").scalar)

        let backfill = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                       ["backfill", "--shards", "2", "--batch-size", "500", "--no-progress", "--database-url", fixture.url, file])
        let writersDone = Atomic<Int>(0)
        let writerFailures = Mutex<[String]>([])
        for writer in 0..<3 {
            Thread.detachNewThread {
                do {
                    try Self.writeLateEvents(url: fixture.url, tenant: tenant, writer: writer)
                } catch {
                    writerFailures.withLock { $0.append("\(error)") }
                }
                writersDone.add(1, ordering: .releasing)
            }
        }
        let poller = try Poller(url: fixture.url, tenant: tenant)
        var backfillResult: Shell.Result?
        // Polled as a SIEM polls, at short intervals; correctness does not depend on them.
        waitUntil(timeout: .seconds(200), interval: .milliseconds(10)) {
            try poller.poll()
            if backfillResult == nil, kill(backfill.pid, 0) != 0 || waitpidExited(backfill.pid) { backfillResult = backfill.wait() }
            guard backfillResult != nil && writersDone.load(ordering: .acquiring) == 3 else { return false }
            let stored = try fixture.owner.execute("SELECT count(*) FROM audit_log WHERE tenant_id = '\(tenant)'").scalar
            return poller.seen.count >= Int(stored ?? "0")!
        }
        #expect(backfillResult?.exitCode == 0, "\(backfillResult?.output ?? "backfill still running")")
        #expect(writerFailures.withLock { $0 }.isEmpty)
        let expected = try fixture.owner.execute("""
            SELECT id::text FROM audit_log WHERE tenant_id = '\(tenant)' ORDER BY ingest_xid, id, "timestamp"
            """).rows.map { $0[0]! }
        #expect(expected.count == 20_000 + 3 * Self.lateTransactions * 2 * Self.eventsPerTransaction)
        #expect(Set(poller.seen).count == poller.seen.count, "no event twice")
        #expect(poller.seen.count == expected.count, "every event")
        #expect(poller.seen == expected, "in transaction order")
    }

    static let lateTransactions = 15
    static let eventsPerTransaction = 4

    /// Pairs of transactions: the first begins and writes, the second begins, writes and commits,
    /// then the first commits. Timestamps are months older than the backfill's.
    static func writeLateEvents(url: String, tenant: String, writer: Int) throws {
        let first = try PostgresConnection(url), second = try PostgresConnection(url)
        for round in 0..<lateTransactions {
            func events() -> [Event] {
                (0..<eventsPerTransaction).map {
                    Event(tenant: tenant, action: "late.\(writer)", timestamp: "2026-01-\(String(format: "%02d", 1 + (round + $0) % 28))T12:00:00Z")
                }
            }
            try first.execute("BEGIN")
            for event in events() { try ReadFixture.insert(event, on: first) }
            try second.transaction { connection in
                for event in events() { try ReadFixture.insert(event, on: connection) }
            }
            try first.execute("COMMIT")
        }
    }
}

/// True when `pid` has exited (without reaping it: `Shell.Child.wait` does).
func waitpidExited(_ pid: pid_t) -> Bool {
    var info = siginfo_t()
    return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == pid
}

/// The feed's horizon waits for writers of audit_log only (migration 0011): any other login's
/// long transaction, a tenant analyst's included, holds back no one's feed.
@Suite(.serialized, .timeLimit(.minutes(2))) struct FeedHorizonTests {
    @Test func aReadersLongTransactionHoldsBackNoFeed() throws {
        let fixture = try ReadFixture()
        let analyst = "analyst_\(UUID().uuidString.prefix(8).lowercased())"
        try fixture.owner.execute("CREATE ROLE \(analyst) LOGIN IN ROLE audit_reader")
        defer { _ = try? fixture.owner.execute("DROP ROLE IF EXISTS \(analyst)") }
        try fixture.owner.query("INSERT INTO tenant_login_role (role_name, tenant_id) VALUES ($1, $2)", [analyst, ReadFixture.tenantB])
        let session = try PostgresConnection(fixture.url.replacingOccurrences(of: "://postgres@", with: "://\(analyst)@"))
        defer { session.close() }
        try session.execute("BEGIN READ ONLY")
        _ = try session.execute("SELECT pg_current_xact_id()")  // an id, held open

        let poller = try EventFeedTests.Poller(url: fixture.url, tenant: ReadFixture.tenantA)
        let events = (0..<5).map { _ in ReadFixture.Event() }
        try fixture.insert(events)
        try poller.pollUntil(count: 5)
        #expect(Set(poller.seen) == Set(events.map(\.id)), "all five, while the analyst's transaction is open")
        try session.execute("ROLLBACK")
    }
}
