import Foundation
import CLibPQ

/// One libpq session. Calls block the calling thread until the server answers: use it from a
/// thread you own (a flusher, a command), not from Swift's cooperative pool.
///
/// Not thread-safe: one thread at a time. `@unchecked Sendable` so that a pool can hand it from one
/// thread to another; the pool guarantees a single holder at a time.
public final class PostgresConnection: @unchecked Sendable {
    /// Owned by this object, freed by `close()` or `deinit` (PQfinish).
    private var handle: OpaquePointer?
    public let configuration: PostgresConfiguration
    /// When the session was opened (for pool recycling). Monotonic.
    public let openedAt: ContinuousClock.Instant

    /// Opens a session. Throws `.connectionFailed` (retriable) or `.loginRefused` (not) with
    /// libpq's message.
    public init(configuration: PostgresConfiguration) throws {
        self.configuration = configuration
        self.openedAt = .now
        self.handle = try Self.connect(configuration)
        if let setup = configuration.sessionSetup {
            do {
                try execute(setup)
            } catch var error as PostgresError {
                close()  // keeps the server's SQLSTATE: a refused SET ROLE is not retriable
                error.message = "session setup failed: \(error.message) (connecting to \(configuration.connectionString.masked))"
                throw error
            }
        }
    }

    public convenience init(_ connectionString: String) throws {
        try self.init(configuration: PostgresConfiguration(connectionString: ConnectionString(connectionString)))
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Closes the session. Further calls throw `.connectionLost`.
    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// True while libpq considers the socket usable. Does not talk to the server: see `ping()`.
    public var isOpen: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// True when the session is inside a transaction block (or a failed one).
    public var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
    }

    /// The server's version number, e.g. 150018 for 15.18.
    public var serverVersion: Int {
        guard let handle else { return 0 }
        return Int(PQserverVersion(handle))
    }

    /// One round trip with an empty query. Throws when the connection is broken.
    public func ping() throws {
        _ = try QueryResult(consuming: try run { PQexec($0, "") }, connection: self)
    }

    // MARK: Queries

    /// Runs one or more statements without parameters (simple query protocol) and returns the last
    /// result. Throws `PostgresError` with the SQLSTATE when the server rejects it.
    @discardableResult
    public func execute(_ sql: String) throws -> QueryResult {
        let result = try run { PQexec($0, sql) }
        return try QueryResult(consuming: result, connection: self)
    }

    /// Runs one statement with `$1...$n` parameters, sent as text (`nil` is NULL).
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?]) throws -> QueryResult {
        let result = try withTextParameters(parameters) { values in
            try run { PQexecParams($0, sql, Int32(parameters.count), nil, values, nil, nil, 0) }
        }
        return try QueryResult(consuming: result, connection: self)
    }

    /// Runs `body` inside BEGIN ... COMMIT; rolls back and rethrows when it throws.
    @discardableResult
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            if isOpen { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Quotes an identifier for SQL (`audit_log_2024_01` -> `"audit_log_2024_01"`).
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: Internals shared with COPY and results

    /// Calls libpq with the live handle; converts a NULL result or a broken connection into an error.
    func run(_ call: (OpaquePointer) -> OpaquePointer?) throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(code: .connectionLost, message: "the connection is closed")
        }
        guard let result = call(handle) else {
            throw connectionError(fallback: "no result from server")
        }
        return result
    }

    func withHandle<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        guard let handle else {
            throw PostgresError(code: .connectionLost, message: "the connection is closed")
        }
        return try body(handle)
    }

    /// The error for a failure that is not a server result: libpq could not send or receive.
    /// It is a lost connection even while libpq still reports the session OK (it notices a socket
    /// closed by a crashed server only when it next reads): retry on a new session.
    func connectionError(fallback: String) -> PostgresError {
        let message = handle.flatMap { PQerrorMessage($0) }.map { String(cString: $0) }?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return PostgresError(code: .connectionLost, message: message.isEmpty ? fallback : message)
    }

    private static func connect(_ configuration: PostgresConfiguration) throws -> OpaquePointer {
        var settings = try parse(configuration.connectionString)
        if settings["application_name"] == nil {
            settings["application_name"] = configuration.applicationName
        }
        let userOptions = settings["options"].map { " " + $0 } ?? ""
        settings["options"] = configuration.serverOptions + userOptions
        settings["client_encoding"] = "UTF8"

        let keys = Array(settings.keys)
        let values = keys.map { settings[$0]! }
        let handle: OpaquePointer? = withCStrings(keys) { keyPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keyPointers, valuePointers, 0)
            }
        }
        guard let handle else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = configuration.connectionString.redact(
                String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines))
            PQfinish(handle)
            if PostgresError.isLoginRefusal(message) {
                throw PostgresError(
                    code: .loginRefused,
                    message: "\(message) (connecting to \(configuration.connectionString.masked))",
                    hint: "the server refused these credentials or this database: check the user, password and database in DATABASE_URL / --database-url, and pg_hba.conf"
                )
            }
            throw PostgresError(
                code: .connectionFailed,
                message: "\(message) (connecting to \(configuration.connectionString.masked))",
                hint: "check DATABASE_URL / --database-url and that the server is running"
            )
        }
        return handle
    }

    /// Splits a connection string into libpq keywords, so our defaults can be merged with it.
    private static func parse(_ connectionString: ConnectionString) throws -> [String: String] {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(connectionString.rawValue, &errorMessage) else {
            if let errorMessage { PQfreemem(errorMessage) }
            // libpq's message quotes fragments of the string, which may be part of a password.
            let reason = ConnectionString.parseError(connectionString.rawValue) ?? "invalid connection string"
            throw PostgresError(code: .connectionFailed, message: "\(reason) in \(connectionString.masked)",
                                hint: "check DATABASE_URL / --database-url (a URI, or keyword=value pairs)")
        }
        defer { PQconninfoFree(options) }
        var settings: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                settings[String(cString: keyword)] = String(cString: value)
            }
            option += 1
        }
        return settings
    }
}

/// Passes `strings` to C as a NULL-terminated `const char *const *`; valid only inside `body`.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    var pointers = duplicates.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Passes optional parameters to PQexecParams as text values (NULL for nil).
func withTextParameters<T>(_ values: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> T) rethrows -> T {
    let duplicates = values.map { $0.map { strdup($0) } ?? nil }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer($0) }
    return try pointers.withUnsafeBufferPointer { try body($0.baseAddress) }
}
