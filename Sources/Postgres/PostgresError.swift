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
            case loginRefused = "login refused"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server could not be reached or refused the session (bad address, auth, database).
        public static let connectionFailed = Code(.connectionFailed)
        /// The server refused this login for good: a wrong or changed password, no pg_hba.conf
        /// entry, an unknown role or database, no LOGIN or CONNECT privilege. Not retriable: the
        /// same credentials fail the same way until an operator changes them.
        public static let loginRefused = Code(.loginRefused)
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
    /// What was being done, in words, when the caller knows (e.g. `COPY into audit_log`).
    public var statement: String?

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

    /// Labels the error with what was being done (`statement`), unless an inner step did.
    public static func labelled<T>(_ statement: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as PostgresError {
            if error.statement == nil { error.statement = statement }
            throw error
        }
    }

    /// True when the error is about the rows sent (class 22 data exception, class 23 integrity
    /// constraint violation), so isolating the offending rows is the remedy.
    public var isDataError: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("23")
    }

    /// Whether libpq's message for a failed connection is the server (or libpq) refusing the
    /// credentials or the target rather than failing to answer. libpq exposes no SQLSTATE for a
    /// failed connection, so this reads the message: PostgreSQL's own wording, in English (a
    /// server with another lc_messages reports these as retriable connection failures).
    public static func isLoginRefusal(_ message: String) -> Bool {
        loginRefusals.contains { message.contains($0) }
    }

    private static let loginRefusals = [
        "authentication failed for user",  // 28P01 password, and peer, ident, LDAP, cert, ... (28000)
        "no pg_hba.conf entry for",  // 28000
        "pg_hba.conf rejects connection",  // 28000
        "is not permitted to log in",  // 28000: NOLOGIN
        "permission denied for database",  // 42501: no CONNECT
        "\" does not exist",  // 28000 role, 3D000 database
        "fe_sendauth: no password supplied",  // libpq: the server asks for one and none was given
    ]

    private static let retriableStates: Set<String> = [
        SQLState.serializationFailure, SQLState.deadlockDetected,
        SQLState.adminShutdown, SQLState.crashShutdown, SQLState.cannotConnectNow, SQLState.tooManyConnections,
        SQLState.lockNotAvailable,
        SQLState.queryCanceled,  // statement_timeout: may pass when the server is less busy
    ]

    public var description: String {
        var text = "\(code): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; detail: \(detail)" }
        if let hint { text += "; hint: \(hint)" }
        if let statement { text += "; while \(statement)" }
        return text
    }
}
