import Foundation
import Operations
import Postgres
import TestSupport
import Testing

/// `stats` (and /utils/db/stats) shows slow queries of its own database only: pg_stat_statements
/// holds every database's statements, other applications' included.
@Suite(.serialized, .timeLimit(.minutes(2))) struct StatisticsScopeTests {
    @Test func slowQueriesAreThisDatabasesOnly() throws {
        let cluster = try PrivateCluster()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster.dataDirectory + "/postgresql.conf"))
        handle.seekToEndOfFile()
        handle.write(Data("\nshared_preload_libraries = 'pg_stat_statements'\n".utf8))
        try handle.close()
        try cluster.restart()
        let admin = try PostgresConnection(cluster.url)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE ours")
        try admin.execute("CREATE DATABASE theirs")
        let ours = try PostgresConnection(TestDatabase.url(cluster.url, database: "ours"))
        let theirs = try PostgresConnection(TestDatabase.url(cluster.url, database: "theirs"))
        defer { ours.close(); theirs.close() }
        try ours.execute("CREATE EXTENSION pg_stat_statements")
        try ours.execute("SELECT pg_sleep(0.01) AS our_query")
        try theirs.execute("SELECT pg_sleep(0.01) AS their_secret_query")

        let statistics = try DatabaseStatistics.collect(on: ours, slowQueryThresholdMilliseconds: 1)
        let queries = statistics.slowQueries?.map(\.query) ?? []
        #expect(queries.contains { $0.contains("our_query") }, "\(queries)")
        #expect(!queries.contains { $0.contains("their_secret_query") }, "\(queries)")
    }
}
