import Postgres

/// `stats`: sizes, row estimates, index usage and slow queries.
public struct DatabaseStatistics: Codable, Sendable {
    public struct Table: Codable, Sendable {
        public var name: String
        /// The partitioned parent, for a partition.
        public var parent: String?
        public var rowEstimate: Int64
        public var tableBytes: Int64
        public var indexBytes: Int64
        public var toastBytes: Int64
        public var totalBytes: Int64
    }
    public struct Index: Codable, Sendable {
        public var table: String
        public var name: String
        public var scans: Int64
        public var bytes: Int64
    }
    public struct SlowQuery: Codable, Sendable {
        public var query: String
        public var calls: Int64
        public var meanMilliseconds: Double
        public var totalMilliseconds: Double
    }

    public var tables: [Table]
    public var indexes: [Index]
    /// Indexes (on tables with more than 1000 rows) never scanned since statistics were reset.
    public var unusedIndexes: [String]
    public var partitionCount: Int
    public var pool: ConnectionPoolStatistics?
    /// nil when pg_stat_statements is not installed (see `slowQueriesNote`).
    public var slowQueries: [SlowQuery]?
    public var slowQueriesNote: String?

    public static func collect(on connection: PostgresConnection, pool: ConnectionPoolStatistics? = nil,
                               slowQueryThresholdMilliseconds: Double = 100) throws -> DatabaseStatistics {
        let tables = try connection.execute("""
            SELECT c.relname, p.relname, greatest(c.reltuples, 0)::bigint,
                   pg_relation_size(c.oid), pg_indexes_size(c.oid),
                   coalesce(pg_total_relation_size(c.reltoastrelid), 0), pg_total_relation_size(c.oid)
            FROM pg_class c
            LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
            LEFT JOIN pg_class p ON p.oid = i.inhparent
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            ORDER BY coalesce(p.relname, c.relname), c.relname
            """).rows.map { row in
                Table(name: row[0]!, parent: row[1], rowEstimate: Int64(row[2]!) ?? 0, tableBytes: Int64(row[3]!) ?? 0,
                      indexBytes: Int64(row[4]!) ?? 0, toastBytes: Int64(row[5]!) ?? 0, totalBytes: Int64(row[6]!) ?? 0)
            }
        let indexRows = try connection.execute("""
            SELECT s.relname, s.indexrelname, s.idx_scan, pg_relation_size(s.indexrelid), c.reltuples
            FROM pg_stat_user_indexes s JOIN pg_class c ON c.oid = s.relid
            WHERE s.schemaname = 'public' ORDER BY s.relname, s.indexrelname
            """).rows
        let indexes = indexRows.map { Index(table: $0[0]!, name: $0[1]!, scans: Int64($0[2]!) ?? 0, bytes: Int64($0[3]!) ?? 0) }
        let unused = indexRows.filter { ($0[2] == "0") && (Double($0[4] ?? "0") ?? 0) > 1000 }.map { $0[1]! }

        var slow: [SlowQuery]?
        var note: String?
        if try connection.execute("SELECT to_regclass('pg_stat_statements') IS NOT NULL").scalar == "t" {
            slow = try connection.query("""
                SELECT left(query, 500), calls, mean_exec_time, total_exec_time FROM pg_stat_statements
                WHERE mean_exec_time >= $1  -- this database's statements only, not other applications'
                  AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY total_exec_time DESC LIMIT 20
                """, [String(slowQueryThresholdMilliseconds)]).rows.map {
                    SlowQuery(query: $0[0]!, calls: Int64($0[1]!) ?? 0, meanMilliseconds: Double($0[2]!) ?? 0,
                              totalMilliseconds: Double($0[3]!) ?? 0)
                }
        } else {
            note = "pg_stat_statements is not installed: add it to shared_preload_libraries and CREATE EXTENSION pg_stat_statements to see slow queries"
        }
        return DatabaseStatistics(tables: tables, indexes: indexes, unusedIndexes: unused,
                                  partitionCount: tables.filter { $0.parent != nil }.count, pool: pool,
                                  slowQueries: slow, slowQueriesNote: note)
    }
}
