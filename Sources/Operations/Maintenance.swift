import Foundation
import Postgres

/// `vacuum`, `reindex`, `analyze`: on the schema's tables only (and their partitions).
public enum Maintenance {
    public struct Result: Codable, Sendable {
        public var operation: String
        public var tables: [String]
        public var seconds: Double
    }

    /// VACUUM (optionally with ANALYZE) one table or every managed table.
    public static func vacuum(table: String?, analyze: Bool, on connection: PostgresConnection) throws -> Result {
        let tables = try resolve(table, on: connection)
        let started = ContinuousClock.now
        for name in tables {
            try connection.execute("VACUUM \(analyze ? "(ANALYZE) " : "")\(PostgresConnection.quoteIdentifier(name))")
        }
        return Result(operation: analyze ? "vacuum analyze" : "vacuum", tables: tables, seconds: started.duration(to: .now).secondsDouble)
    }

    /// REINDEX TABLE CONCURRENTLY (writers keep going) one table or every managed table.
    public static func reindex(table: String?, on connection: PostgresConnection) throws -> Result {
        let tables = try resolve(table, on: connection)
        let started = ContinuousClock.now
        for name in tables {
            try connection.execute("REINDEX TABLE CONCURRENTLY \(PostgresConnection.quoteIdentifier(name))")
        }
        return Result(operation: "reindex concurrently", tables: tables, seconds: started.duration(to: .now).secondsDouble)
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
