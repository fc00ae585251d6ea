/// How to open a session.
public struct PostgresConfiguration: Sendable {
    /// Where to connect: a URI or keyword/value string (`DATABASE_URL`). Any libpq setting may be
    /// given here (sslmode, connect_timeout, ...).
    public var connectionString: ConnectionString
    /// Shown in `pg_stat_activity`. Default: `audit-ingest`. A value in the connection string wins.
    public var applicationName: String
    /// Server-side limit per statement. Default: 30 s. `nil` leaves the server's setting.
    public var statementTimeout: Duration?
    /// Extra `-c name=value` session settings appended to libpq's `options`.
    public var sessionSettings: [String: String]
    /// SQL run once on every new session before it is used (e.g. `SET ROLE`). A failure fails
    /// the connection with the server's message. Default: none.
    public var sessionSetup: String?

    public init(
        connectionString: ConnectionString,
        applicationName: String = "audit-ingest",
        statementTimeout: Duration? = .seconds(30),
        sessionSettings: [String: String] = [:],
        sessionSetup: String? = nil
    ) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.statementTimeout = statementTimeout
        self.sessionSettings = sessionSettings
        self.sessionSetup = sessionSetup
    }

    /// The `options` value: time zone UTC, statement timeout, then `sessionSettings`.
    var serverOptions: String {
        var settings = ["-c timezone=UTC", "-c client_min_messages=warning"]
        if let statementTimeout {
            settings.append("-c statement_timeout=\(statementTimeout.milliseconds)")
        }
        for (name, value) in sessionSettings.sorted(by: { $0.key < $1.key }) {
            settings.append("-c \(name)=\(value)")
        }
        return settings.joined(separator: " ")
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a floating-point number.
    public var secondsDouble: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
