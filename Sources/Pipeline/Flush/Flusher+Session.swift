import Postgres

/// A flusher's session with PostgreSQL and what it does beside the flush: (re)connecting with the
/// flush's settings, the error after repeated statement timeouts, and publishing committed dead
/// letters.
extension Flusher {
    /// The flush sessions' settings: `database` with a lock timeout under its statement timeout,
    /// so a wait for a lock is told from a slow statement (55P03, not 57014).
    private var sessionConfiguration: PostgresConfiguration {
        var session = database
        var lockTimeout = configuration.lockTimeout
        if let statementTimeout = database.statementTimeout, statementTimeout <= lockTimeout { lockTimeout = statementTimeout / 2 }
        session.sessionSettings["lock_timeout"] = session.sessionSettings["lock_timeout"] ?? "\(max(lockTimeout.milliseconds, 1))"
        return session
    }

    /// The error that stops the run after `times` statement timeouts in a row, naming the
    /// statement and the setting's value (read on a fresh session, best effort).
    func timedOut(_ error: PostgresError, times: Int) -> IngestError {
        let setting = (try? PostgresConnection(configuration: database)).flatMap { session in
            defer { session.close() }
            return try? session.execute("SHOW statement_timeout").scalar
        }
        return IngestError(.databaseTimeout, """
            PostgreSQL cancelled \(error.statement ?? "a flush statement") at the statement timeout \(times) times in a row \
            (statement_timeout is \(setting ?? "unknown") on the ingest sessions; \(error.message)). Nothing of this batch was \
            stored or dead-lettered: the same command retries it. If the server was only busy, run it again; if \
            the limit is too short for the work, raise --statement-timeout (with --statement-timeout 0 the role's or \
            the database's setting applies; one in the connection string's options wins), or lower --batch-size.
            """)
    }

    /// Hands committed dead letters to `sink` by the source they are stored under, with their
    /// stored partition numbers.
    func publish(_ deadLetters: [DeadLetter], to sink: any DeadLetterSink) {
        var bySource: [String: [DeadLetter]] = [:]
        for var deadLetter in deadLetters {
            let location = streams.locate(deadLetter.partition)
            deadLetter.partition = location.partition
            bySource[location.source, default: []].append(deadLetter)
        }
        for (source, deadLetters) in bySource.sorted(by: { $0.key < $1.key }) { sink.publish(deadLetters, source: source) }
    }

    func connected() throws -> PostgresConnection {
        if let connection, connection.isOpen { return connection }
        let fresh = try PostgresConnection(configuration: sessionConfiguration)
        connection = fresh
        return fresh
    }
}
