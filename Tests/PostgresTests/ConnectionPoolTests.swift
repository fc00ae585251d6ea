import Foundation
import Postgres
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(3))) struct ConnectionPoolTests {
    func pool(_ url: String, size: Int = 2, overflow: Int = 0, timeout: Duration = .milliseconds(300),
              prePing: Bool = true) -> ConnectionPool {
        ConnectionPool(PostgresConfiguration(connectionString: ConnectionString(url)),
                       configuration: ConnectionPoolConfiguration(size: size, maxOverflow: overflow, prePing: prePing,
                                                                  checkoutTimeout: timeout))
    }

    @Test func defaultsAreTheSeedDocuments() {
        let configuration = ConnectionPoolConfiguration()
        #expect(configuration.size == 20)
        #expect(configuration.maxOverflow == 30)
        #expect(configuration.prePing)
        #expect(configuration.recycleAfter == .seconds(3600))
        #expect(configuration.checkoutTimeout == .seconds(30))
    }

    @Test func checkoutTimesOutWithAClearError() throws {
        let pool = pool(try TestDatabase.baseURL(), size: 1, overflow: 0)
        let held = try pool.checkout()
        let started = ContinuousClock.now
        let error = try #require(throws: PostgresError.self) { try pool.checkout() }
        let waited = started.duration(to: .now)
        #expect(error.code == .poolTimeout)
        #expect(error.message.contains("no connection free"))
        #expect(waited >= .milliseconds(250) && waited < .seconds(5))
        let statistics = pool.statistics
        #expect(statistics.timeouts == 1)
        #expect(statistics.waits == 1)
        #expect(statistics.inUse == 1)
        pool.checkin(held)
        #expect(try pool.withConnection { try $0.execute("SELECT 1").scalar } == "1")
    }

    @Test func overflowConnectionsOpenUnderLoadAndCloseWhenReturned() throws {
        let pool = pool(try TestDatabase.baseURL(), size: 1, overflow: 1)
        let first = try pool.checkout()
        let second = try pool.checkout()
        #expect(pool.statistics.open == 2)
        #expect(pool.statistics.overflow == 1)
        #expect(throws: PostgresError.self) { try pool.checkout() }
        pool.checkin(first)
        pool.checkin(second)
        let statistics = pool.statistics
        #expect(statistics.open == 1)
        #expect(statistics.idle == 1)
        #expect(statistics.inUse == 0)
    }

    @Test func waiterGetsTheConnectionWhenItIsReturned() throws {
        // Synchronous on purpose: the timing must not depend on the (busy) cooperative pool.
        let pool = pool(try TestDatabase.baseURL(), size: 1, timeout: .seconds(20))
        let held = try pool.checkout()
        let done = DispatchSemaphore(value: 0)
        let waiter = Thread {
            if let connection = try? pool.checkout() { pool.checkin(connection) }
            done.signal()
        }
        waiter.start()
        #expect(waitUntil(timeout: .seconds(15)) { pool.statistics.waits > 0 })  // the waiter is blocked in checkout
        pool.checkin(held)
        #expect(done.wait(timeout: .now() + 15) == .success)
        let statistics = pool.statistics
        #expect(statistics.waits == 1)
        #expect(statistics.timeouts == 0)
        #expect(statistics.checkouts == 2)
    }

    @Test func concurrentCheckoutsNeverExceedTheLimit() throws {
        let pool = pool(try TestDatabase.baseURL(), size: 2, overflow: 1, timeout: .seconds(20))
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<20 {
                do {
                    try pool.withConnection { connection in
                        _ = try connection.execute("SELECT pg_sleep(0.001)")
                        if pool.statistics.open > 3 { failures.increment() }
                    }
                } catch {
                    failures.increment()
                }
            }
        }
        #expect(failures.value == 0)
        #expect(pool.statistics.checkouts == 160)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func connectionBrokenByAServerRestartIsReplacedByPrePing() throws {
        let cluster = try PrivateCluster()
        let pool = pool(cluster.url, size: 1)
        let pidBefore = try pool.withConnection { try $0.execute("SELECT pg_backend_pid()").scalar }
        try cluster.restart()
        let pidAfter = try pool.withConnection { try $0.execute("SELECT pg_backend_pid()").scalar }
        #expect(pidAfter != nil && pidAfter != pidBefore)
        #expect(pool.statistics.replaced == 1)
        #expect(pool.statistics.open == 1)
    }

    @Test func withoutPrePingTheBrokenConnectionWouldBeHandedOut() throws {
        // The counterpart of the test above: it shows that pre-ping is what saves the caller.
        let cluster = try PrivateCluster()
        let pool = pool(cluster.url, size: 1, prePing: false)
        try pool.withConnection { _ = try $0.execute("SELECT 1") }
        try cluster.restart()
        let error = try #require(throws: PostgresError.self) {
            try pool.withConnection { try $0.execute("SELECT 1") }
        }
        #expect(error.isRetriable)
        // The broken connection was dropped on return, so the next checkout works.
        #expect(try pool.withConnection { try $0.execute("SELECT 1").scalar } == "1")
    }
}

/// A thread-safe counter for the stress test.
final class Counter: @unchecked Sendable {  // guarded by lock
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
