import Postgres
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(2))) struct PostgresConnectionTests {
    @Test func sessionHasUTCTimeZoneApplicationNameAndStatementTimeout() throws {
        let connection = try PostgresConnection(try TestDatabase.baseURL())
        #expect(try connection.execute("SHOW timezone").scalar == "UTC")
        #expect(try connection.execute("SHOW application_name").scalar == "audit-ingest")
        #expect(try connection.execute("SHOW statement_timeout").scalar == "30s")
        #expect(connection.serverVersion >= 150000)
    }

    @Test func parameterisedQueryAndNulls() throws {
        let connection = try PostgresConnection(try TestDatabase.baseURL())
        let result = try connection.query("SELECT $1::int + 1 AS n, $2::text AS t, $3::text AS missing", ["41", "it's", nil])
        #expect(result[0, "n"] == "42")
        #expect(result[0, "t"] == "it's")
        #expect(result[0, "missing"] == nil)
    }

    @Test func transactionRollsBackWhenBodyThrows() throws {
        struct Boom: Error {}
        let connection = try PostgresConnection(try TestDatabase.create())
        try connection.execute("CREATE TABLE t (n int)")
        #expect(throws: Boom.self) {
            try connection.transaction { connection in
                try connection.execute("INSERT INTO t VALUES (1)")
                throw Boom()
            }
        }
        try connection.transaction { try $0.execute("INSERT INTO t VALUES (2)") }
        #expect(try connection.execute("SELECT string_agg(n::text, ',') FROM t").scalar == "2")
        #expect(!connection.isInTransaction)
    }

    @Test func serverErrorCarriesSQLStateAndIsNotRetriable() throws {
        let connection = try PostgresConnection(try TestDatabase.baseURL())
        let error = try #require(throws: PostgresError.self) {
            try connection.execute("SELECT * FROM no_such_table")
        }
        #expect(error.code == .queryFailed)
        #expect(error.sqlState == "42P01")
        #expect(!error.isRetriable)
        #expect(error.message.contains("no_such_table"))
        // The session is still usable.
        #expect(try connection.execute("SELECT 1").scalar == "1")
    }

    @Test func dataErrorsAreClassified() throws {
        let connection = try PostgresConnection(try TestDatabase.baseURL())
        let error = try #require(throws: PostgresError.self) { try connection.execute("SELECT 'x'::int") }
        #expect(error.sqlState == "22P02")
        #expect(error.isDataError)
        #expect(!error.isRetriable)
    }

    @Test func failedConnectionIsRetriableAndNeverShowsThePassword() throws {
        let error = try #require(throws: PostgresError.self) {
            try PostgresConnection("postgresql://someone:topsecret@127.0.0.1:1/nothing?connect_timeout=2")
        }
        #expect(error.code == .connectionFailed)
        #expect(error.isRetriable)
        #expect(!error.description.contains("topsecret"))
        #expect(error.description.contains("someone:***@127.0.0.1:1"))
    }

    @Test func terminatedSessionReportsConnectionLost() throws {
        let url = try TestDatabase.baseURL()
        let victim = try PostgresConnection(url)
        let pid = try #require(try victim.execute("SELECT pg_backend_pid()").scalar)
        let killer = try PostgresConnection(url)
        try killer.execute("SELECT pg_terminate_backend(\(pid))")
        let error = try #require(throws: PostgresError.self) { try victim.execute("SELECT 1") }
        #expect(error.isRetriable, "\(error)")
        #expect(!victim.isOpen)
    }
}

@Suite(.serialized) struct ServerCrashTests {
    /// An idle session of a server that crashed (or failed over) learns it only at its next
    /// statement, which libpq fails without a SQLSTATE: that is a lost connection, to retry.
    @Test(arguments: [PrivateCluster.ShutdownMode.fast, .immediate])
    func idleSessionOfARestartedServerReportsConnectionLost(_ mode: PrivateCluster.ShutdownMode) throws {
        let cluster = try PrivateCluster()
        let idle = try PostgresConnection(cluster.url)
        try idle.execute("SELECT 1")
        try cluster.restart(mode)
        let error = try #require(throws: PostgresError.self) { try idle.execute("SELECT 1") }
        #expect(error.code == .connectionLost, "\(error)")
        #expect(error.isRetriable, "\(error)")
        #expect(try PostgresConnection(cluster.url).execute("SELECT 1").scalar == "1")
    }

    /// A COPY whose server crashes under it fails as a lost connection, wherever it was.
    @Test func copyCutByACrashReportsConnectionLost() throws {
        let cluster = try PrivateCluster()
        let connection = try PostgresConnection(cluster.url)
        try connection.execute("CREATE TABLE numbers (n int)")
        try connection.execute("BEGIN")
        let writer = try connection.beginBinaryCopy("COPY numbers FROM STDIN (FORMAT binary)")
        func rows(_ range: Range<Int32>) throws {
            for n in range {
                writer.encoder.beginRow(fieldCount: 1)
                writer.encoder.appendInt32(n)
                try writer.sendIfFull()
            }
            try writer.send()
        }
        let error = try #require(throws: PostgresError.self) {
            try rows(0..<1000)
            try cluster.restart(.immediate)
            try rows(1000..<2000)
            try writer.finish()
        }
        #expect(error.code == .connectionLost, "\(error)")
        #expect(error.isRetriable, "\(error)")
    }
}
