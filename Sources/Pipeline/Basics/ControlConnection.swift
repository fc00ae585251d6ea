import Logging
import Postgres

/// The run's one connection besides the flushers': stored positions on rebalances, tenant
/// reloads, a file's bookkeeping, lag queries, the count fold. Opened by `IngestEngine.prepare`;
/// reopened on first use after PostgreSQL dropped it. Used on the engine's thread only.
final class ControlConnection {
    private let database: PostgresConfiguration
    private let logger: Logger
    private var connection: PostgresConnection?

    init(_ connection: PostgresConnection, database: PostgresConfiguration, logger: Logger) {
        self.connection = connection
        self.database = database
        self.logger = logger
    }

    /// Runs `body` on the connection (reconnecting first when it was lost).
    func run<Result>(_ body: (PostgresConnection) throws -> Result) throws -> Result {
        try body(try open())
    }

    /// Runs `body` on the connection as best-effort bookkeeping (a file's checkpoints): a failure
    /// is logged, not thrown.
    func bestEffort(_ what: String, _ body: (PostgresConnection) throws -> Void) {
        do {
            try body(try open())
        } catch {
            logger.warning("could not \(what); a later run records it", metadata: [LogKey.error: "\(error)"])
        }
    }

    /// PostgreSQL went away (a retriable error): the next use reconnects.
    func drop() {
        connection?.close()
        connection = nil
    }

    func close() { drop() }

    private func open() throws -> PostgresConnection {
        if let connection, connection.isOpen { return connection }
        let fresh = try PostgresConnection(configuration: database)
        connection = fresh
        return fresh
    }
}
