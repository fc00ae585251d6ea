/// An error from PostgreSQL or from libpq, with what an operator needs to act on it.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case connectionFailed = "connection failed"
            case connectionLost = "connection lost"
            case queryFailed = "query failed"
            case copyFailed = "COPY failed"
            case unexpectedResult = "unexpected result"
            case poolTimeout = "connection pool checkout timed out"
            case poolClosed = "connection pool closed"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server could not be reached or refused the session (bad address, auth, database).
        public static let connectionFailed = Code(.connectionFailed)
        /// An established connection broke (server restart, network).
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected a statement; see `sqlState`.
        public static let queryFailed = Code(.queryFailed)
        /// The server rejected COPY data; see `sqlState`.
        public static let copyFailed = Code(.copyFailed)
        /// The server answered with a result this client did not expect.
        public static let unexpectedResult = Code(.unexpectedResult)
        /// No pooled connection became free within the checkout timeout.
        public static let poolTimeout = Code(.poolTimeout)
        /// The pool was shut down.
        public static let poolClosed = Code(.poolClosed)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// The five-character SQLSTATE, when the server sent one (e.g. `23514`).
    public var sqlState: String?
    /// The server's primary message, or libpq's.
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(code: Code, sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    /// True when the same work may succeed if retried later: connection problems,
    /// serialization failures and deadlocks, server shutdown, too many connections, pool timeouts.
    /// False for data errors (class 22, 23, ...), which retrying cannot fix.
    public var isRetriable: Bool {
        if code == .connectionFailed || code == .connectionLost || code == .poolTimeout { return true }
        guard let sqlState else { return false }
        if sqlState.hasPrefix("08") { return true }  // connection exception
        return Self.retriableStates.contains(sqlState)
    }

    /// True when the error is about the rows sent (class 22 data exception, class 23 integrity
    /// constraint violation), so isolating the offending rows is the remedy.
    public var isDataError: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("23")
    }

    private static let retriableStates: Set<String> = [
        "40001",  // serialization_failure
        "40P01",  // deadlock_detected
        "57P01",  // admin_shutdown
        "57P02",  // crash_shutdown
        "57P03",  // cannot_connect_now
        "53300",  // too_many_connections
        "55P03",  // lock_not_available
        "57014",  // query_canceled (statement_timeout): may pass when the server is less busy
    ]

    public var description: String {
        var text = "\(code): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; detail: \(detail)" }
        if let hint { text += "; hint: \(hint)" }
        return text
    }
}
