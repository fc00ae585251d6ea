import Foundation
import Logging

/// The pool's knobs, with the seed document's defaults.
public struct ConnectionPoolConfiguration: Sendable {
    /// Connections kept open when idle. Default: 20.
    public var size: Int
    /// Extra connections opened under load and closed when returned. Default: 30.
    public var maxOverflow: Int
    /// Check a connection with a round trip before handing it out; replace it if broken. Default: on.
    public var prePing: Bool
    /// Close and reopen connections older than this when they are checked out. Default: 3600 s.
    public var recycleAfter: Duration
    /// How long `checkout()` waits for a free connection before throwing `.poolTimeout`. Default: 30 s.
    public var checkoutTimeout: Duration

    public init(size: Int = 20, maxOverflow: Int = 30, prePing: Bool = true,
                recycleAfter: Duration = .seconds(3600), checkoutTimeout: Duration = .seconds(30)) {
        precondition(size >= 1 && maxOverflow >= 0, "pool size must be >= 1 and overflow >= 0")
        self.size = size
        self.maxOverflow = maxOverflow
        self.prePing = prePing
        self.recycleAfter = recycleAfter
        self.checkoutTimeout = checkoutTimeout
    }
}

/// A snapshot of the pool, for `health`, `stats` and `/metrics`.
public struct ConnectionPoolStatistics: Sendable, Equatable, Codable {
    /// Connections open (idle + in use).
    public var open: Int
    public var idle: Int
    public var inUse: Int
    /// Connections open beyond `size`.
    public var overflow: Int
    /// Checkouts that had to wait for a connection (since start).
    public var waits: Int
    /// Checkouts that gave up after `checkoutTimeout` (since start).
    public var timeouts: Int
    /// Seconds since the latest checkout timeout; nil when there was none. Health looks at this,
    /// not at `timeouts`, so one burst does not keep it failing for the life of the process.
    public var secondsSinceLastTimeout: Double?
    /// Connections closed by pre-ping failure or recycling and replaced (since start).
    public var replaced: Int
    /// Successful checkouts (since start).
    public var checkouts: Int
}

/// A blocking connection pool (QueuePool semantics): up to `size` idle connections kept, up to
/// `size + maxOverflow` open at once, pre-ping and recycling on checkout, a checkout timeout.
///
/// Thread-safe: every field below is guarded by `condition`; connecting, pinging and closing
/// happen outside the lock. `checkout()` blocks its thread, so call it from threads you own.
public final class ConnectionPool: @unchecked Sendable {
    public let configuration: ConnectionPoolConfiguration
    public let connectionConfiguration: PostgresConfiguration
    private let logger: Logger

    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var openCount = 0  // idle + in use + being opened
    private var inUseCount = 0
    private var waits = 0
    private var timeouts = 0
    private var lastTimeout: ContinuousClock.Instant?
    private var replaced = 0
    private var checkouts = 0
    private var isClosed = false

    public init(_ connectionConfiguration: PostgresConfiguration,
                configuration: ConnectionPoolConfiguration = .init(),
                logger: Logger = Logger(label: "audit-ingest.pool")) {
        self.connectionConfiguration = connectionConfiguration
        self.configuration = configuration
        self.logger = logger
    }

    deinit { close() }

    /// Hands out a working connection, waiting up to `checkoutTimeout` when all are in use.
    /// Throws `.poolTimeout` (with the pool's size in the message), `.poolClosed`, or the
    /// connection error when a new session cannot be opened.
    public func checkout() throws -> PostgresConnection {
        let deadline = Date().addingTimeInterval(configuration.checkoutTimeout.secondsDouble)
        var waited = false
        condition.lock()
        while true {
            if isClosed {
                condition.unlock()
                throw PostgresError(code: .poolClosed, message: "the connection pool is closed")
            }
            if let connection = idle.popLast() {
                inUseCount += 1
                condition.unlock()
                return try validated(connection)
            }
            if openCount < configuration.size + configuration.maxOverflow {
                openCount += 1
                inUseCount += 1
                condition.unlock()
                return try openNew()
            }
            if !waited {
                waited = true
                waits += 1
            }
            if !condition.wait(until: deadline) {
                timeouts += 1
                lastTimeout = .now
                let limit = configuration.size + configuration.maxOverflow
                condition.unlock()
                logger.warning("connection pool exhausted", metadata: [LogKey.poolLimit: "\(limit)"])
                throw PostgresError(
                    code: .poolTimeout,
                    message: "no connection free after \(configuration.checkoutTimeout) (all \(limit) in use)",
                    hint: "raise the pool size or overflow, or find what holds connections"
                )
            }
        }
    }

    /// Returns a connection. Broken connections, ones left inside a transaction that cannot be
    /// rolled back, overflow connections and any returned after `close()` are closed.
    public func checkin(_ connection: PostgresConnection) {
        if connection.isOpen && connection.isInTransaction {
            _ = try? connection.execute("ROLLBACK")
        }
        condition.lock()
        inUseCount -= 1
        // Above `size` open connections, whichever comes back first is the overflow one to close.
        let keep = !isClosed && connection.isOpen && !connection.isInTransaction
            && openCount <= configuration.size
        if keep {
            idle.append(connection)
        } else {
            openCount -= 1
        }
        condition.signal()
        condition.unlock()
        if !keep { connection.close() }
    }

    /// Checks out a connection for the duration of `body`.
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try checkout()
        defer { checkin(connection) }
        return try body(connection)
    }

    public var statistics: ConnectionPoolStatistics {
        condition.lock()
        defer { condition.unlock() }
        return ConnectionPoolStatistics(
            open: openCount, idle: idle.count, inUse: inUseCount,
            overflow: max(0, openCount - configuration.size),
            waits: waits, timeouts: timeouts,
            secondsSinceLastTimeout: lastTimeout.map { $0.duration(to: .now).secondsDouble },
            replaced: replaced, checkouts: checkouts
        )
    }

    /// Closes idle connections and refuses further checkouts; in-use ones close when returned.
    public func close() {
        condition.lock()
        isClosed = true
        let closing = idle
        idle.removeAll()
        openCount -= closing.count
        condition.broadcast()
        condition.unlock()
        closing.forEach { $0.close() }
    }

    // MARK: Private

    /// Recycles an old connection and pre-pings the rest; replaces what fails. Called with a slot
    /// already counted in `openCount` and `inUseCount`.
    private func validated(_ connection: PostgresConnection) throws -> PostgresConnection {
        let age = connection.openedAt.duration(to: .now)
        var reason: String?
        if age > configuration.recycleAfter {
            reason = "recycled after \(age)"
        } else if configuration.prePing {
            do {
                try connection.ping()
            } catch {
                reason = "pre-ping failed: \(error)"
            }
        }
        guard let reason else {
            countCheckout(replacing: false)
            return connection
        }
        logger.info("replacing pooled connection", metadata: [LogKey.reason: "\(reason)"])
        connection.close()
        return try openNew(replacing: true)
    }

    /// Opens a session for a slot already counted; gives the slot back if that fails.
    private func openNew(replacing: Bool = false) throws -> PostgresConnection {
        do {
            let connection = try PostgresConnection(configuration: connectionConfiguration)
            countCheckout(replacing: replacing)
            return connection
        } catch {
            condition.lock()
            openCount -= 1
            inUseCount -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    private func countCheckout(replacing: Bool) {
        condition.lock()
        checkouts += 1
        if replacing { replaced += 1 }
        condition.unlock()
    }
}
