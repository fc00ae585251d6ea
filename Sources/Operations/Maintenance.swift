import Foundation
import Postgres

/// `vacuum`, `reindex`, `analyze`: on the schema's tables only (and their partitions).
public enum Maintenance {
    public struct Result: Codable, Sendable {
        public var operation: String
        public var tables: [String]
        public var seconds: Double
    }

    /// VACUUM (optionally with ANALYZE) one table or every managed table, without a statement
    /// timeout (a large table takes longer than the session's 30 s).
    public static func vacuum(table: String?, analyze: Bool, on connection: PostgresConnection) throws -> Result {
        let tables = try resolve(table, on: connection)
        let started = ContinuousClock.now
        try withoutStatementTimeout(on: connection) {
            for name in tables {
                try connection.execute("VACUUM \(analyze ? "(ANALYZE) " : "")\(PostgresConnection.quoteIdentifier(name))")
            }
        }
        return Result(operation: analyze ? "vacuum analyze" : "vacuum", tables: tables, seconds: started.duration(to: .now).secondsDouble)
    }

    /// REINDEX TABLE CONCURRENTLY (writers keep going) one table or every managed table, without
    /// a statement timeout. An interrupted REINDEX CONCURRENTLY leaves INVALID `*_ccnew` indexes
    /// that every insert still maintains: they are dropped before starting (left by an earlier
    /// run) and when it fails, and the error is rethrown.
    public static func reindex(table: String?, on connection: PostgresConnection) throws -> Result {
        let tables = try resolve(table, on: connection)
        let started = ContinuousClock.now
        try withoutStatementTimeout(on: connection) {
            for name in tables {
                try dropInvalidReindexLeftovers(of: name, on: connection)
                do {
                    try connection.execute("REINDEX TABLE CONCURRENTLY \(PostgresConnection.quoteIdentifier(name))")
                } catch {
                    _ = try? dropInvalidReindexLeftovers(of: name, on: connection)
                    throw error
                }
            }
        }
        return Result(operation: "reindex concurrently", tables: tables, seconds: started.duration(to: .now).secondsDouble)
    }

    /// Drops the INVALID indexes named `*_ccnew*` (REINDEX CONCURRENTLY's new copies) on `table`,
    /// its partitions and their TOAST tables; returns their names. DROP INDEX CONCURRENTLY waits
    /// for transactions still using the table.
    @discardableResult
    public static func dropInvalidReindexLeftovers(of table: String, on connection: PostgresConnection) throws -> [String] {
        if connection.isInTransaction { _ = try? connection.execute("ROLLBACK") }
        let leftovers = try connection.query("""
            SELECT i.indexrelid::regclass::text
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE NOT i.indisvalid AND c.relname ~ '_ccnew[0-9]*$'
              AND i.indrelid IN (SELECT t.oid FROM pg_class t
                                 WHERE t.oid = $1::regclass OR t.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)
                                 UNION ALL  -- their TOAST tables' indexes are rebuilt too
                                 SELECT t.reltoastrelid FROM pg_class t
                                 WHERE t.oid = $1::regclass OR t.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass))
            """, [PostgresConnection.quoteIdentifier(table)]).rows.compactMap { $0[0] }
        for index in leftovers {
            try connection.execute("DROP INDEX CONCURRENTLY IF EXISTS \(index)")
        }
        return leftovers
    }

    /// Runs `body` with `statement_timeout = 0`, then restores the session's own setting.
    static func withoutStatementTimeout<T>(on connection: PostgresConnection, _ body: () throws -> T) throws -> T {
        try connection.execute("SET statement_timeout = 0")
        defer { _ = try? connection.execute("RESET statement_timeout") }
        return try body()
    }

    /// ANALYZE every managed table.
    public static func analyze(on connection: PostgresConnection) throws -> Result {
        let tables = try resolve(nil, on: connection)
        let started = ContinuousClock.now
        for name in tables { try connection.execute("ANALYZE \(PostgresConnection.quoteIdentifier(name))") }
        return Result(operation: "analyze", tables: tables, seconds: started.duration(to: .now).secondsDouble)
    }

    /// The managed tables, or `table` when it is one of them or one of their partitions. Refuses
    /// anything else with the list of what is allowed.
    static func resolve(_ table: String?, on connection: PostgresConnection) throws -> [String] {
        let existing = try connection.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')")
            .rows.compactMap { $0[0] }
        let managed = ManagedTables.all.filter(existing.contains)
        guard let table else { return managed }
        let partitions = try connection.execute("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname IN ('audit_log', 'tenant_metrics')
            """).rows.compactMap { $0[0] }
        guard managed.contains(table) || partitions.contains(table) else {
            throw OperationsError("unknown table \(table): expected one of \(managed.joined(separator: ", ")) or one of their partitions")
        }
        return [table]
    }
}
