import AuditCore
import Foundation
import Logging
import Postgres

/// The SQL of one flush, in one transaction: partitions, the positions' compare-and-set, COPY
/// with poison isolation, dead letters and tenant_metrics counts. Knows nothing of threads,
/// rings or retries (`Flusher` does), so it can be run on its own against a batch.
struct FlushTransaction {
    let streams: SourceStreams
    let shard: Int
    let partitions: PartitionManager
    let logger: Logger

    struct Result {
        /// Rows now in audit_log.
        var stored: Int
        /// The batch's dead letters and the rows PostgreSQL refused, now in audit_dead_letter.
        var deadLetters: [DeadLetter]
    }

    /// Commits one batch: makes the months it needs, moves the shard's positions from `committed`
    /// to `pending` (compare-and-set), COPYs the rows (sorted by tenant in place), dead-letters
    /// `deadLetters` and any row PostgreSQL refuses, and counts the stored rows in tenant_metrics.
    /// Throws what PostgreSQL throws; the caller decides whether to retry.
    /// - Parameter splittingOnTimeout: also bisect on a statement timeout (57014).
    func run(rows: inout [EncodedRow], deadLetters: [DeadLetter], from committed: [Int32: Int64], to pending: [Int32: Mark],
             layouts: [Int32: Int64], splittingOnTimeout: Bool, on connection: PostgresConnection) throws -> Result {
        try partitions.ensure(Set(rows.map(\.month)), on: connection)
        return try connection.transaction { connection in
            // Offsets first: the compare-and-set locks this shard's rows and proves no other
            // process has moved them since, before any row is written.
            if try !StreamOffsets(streams: streams).advance(shard: shard, from: committed, to: pending, layouts: layouts, on: connection) {
                logger.warning("this batch was already committed (the reply to an earlier COMMIT was lost): not writing it again")
                return Result(stored: rows.count, deadLetters: deadLetters)
            }
            // By tenant, then time: the order of the (tenant_id, "timestamp") indexes, so each
            // index insert lands next to the previous one (FACTS.md: a third less CPU than random).
            rows.sort { ($0.tenantID, $0.timestamp) < ($1.tenantID, $1.timestamp) }
            let rejected = rows.isEmpty ? [] : try copyIsolatingPoison(rows[...], splittingOnTimeout: splittingOnTimeout, on: connection)
            let rejectedPositions = Set(rejected.map { Position(partition: $0.partition, offset: $0.offset) })
            let stored = rejected.isEmpty
                ? rows[...]
                : ArraySlice(rows.filter { !rejectedPositions.contains(Position(partition: $0.partition, offset: $0.offset)) })
            let allDeadLetters = deadLetters + rejected
            if !allDeadLetters.isEmpty { try insertDeadLetters(allDeadLetters, on: connection) }
            if !stored.isEmpty { try countEvents(stored, on: connection) }
            return Result(stored: stored.count, deadLetters: allDeadLetters)
        }
    }

    private struct Position: Hashable {
        var partition: Int32
        var offset: Int64
    }

    /// COPYs `rows`; when PostgreSQL refuses them for a data reason, bisects (each attempt under a
    /// savepoint) down to the offending rows and returns them as dead letters with the SQLSTATE.
    private func copyIsolatingPoison(_ rows: ArraySlice<EncodedRow>, splittingOnTimeout: Bool,
                                     on connection: PostgresConnection) throws -> [DeadLetter] {
        try connection.execute("SAVEPOINT batch")
        do {
            try copy(rows, on: connection)
            try connection.execute("RELEASE SAVEPOINT batch")
            return []
        } catch let error as PostgresError
                    where (error.isDataError && error.sqlState != "23514") || (splittingOnTimeout && error.sqlState == "57014") {
            try connection.execute("ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch")
            guard rows.count > 1 else {
                let row = rows.first!
                logger.warning("row refused by PostgreSQL, dead-lettered", metadata: [
                    "partition": "\(row.partition)", "offset": "\(row.offset)", "sqlstate": "\(error.sqlState ?? "")"])
                return [DeadLetter(partition: row.partition, offset: row.offset, next: row.next, tenantID: row.tenantID,
                                   rawMessage: row.rawMessage, reason: Rejection.Kind.rejectedByDatabase.rawValue,
                                   detail: [error.message, error.detail].compactMap { $0 }.joined(separator: ": "),
                                   sqlState: error.sqlState)]
            }
            let middle = rows.startIndex + rows.count / 2
            return try copyIsolatingPoison(rows[..<middle], splittingOnTimeout: splittingOnTimeout, on: connection)
                + copyIsolatingPoison(rows[middle...], splittingOnTimeout: splittingOnTimeout, on: connection)
        }
    }

    private func copy(_ rows: ArraySlice<EncodedRow>, on connection: PostgresConnection) throws {
        try connection.copyBinary("COPY audit_log (\(AuditEvent.copyColumns)) FROM STDIN (FORMAT binary)") { writer in
            for row in rows {
                row.storage.withUnsafeBytes { writer.encoder.appendEncodedRows(UnsafeRawBufferPointer(rebasing: $0[..<row.rowLength])) }
                try writer.sendIfFull()
            }
        }
    }

    private func insertDeadLetters(_ deadLetters: [DeadLetter], on connection: PostgresConnection) throws {
        let sql = #"COPY audit_dead_letter (source, "partition", "offset", tenant_id, raw_payload, reason, sqlstate, detail) FROM STDIN (FORMAT binary)"#
        try connection.copyBinary(sql) { writer in
            for deadLetter in deadLetters {
                let location = streams.locate(deadLetter.partition)
                writer.encoder.beginRow(fieldCount: 8)
                writer.encoder.appendText(location.source)
                writer.encoder.appendInt32(location.partition)
                writer.encoder.appendInt64(deadLetter.offset)
                if let tenant = deadLetter.tenantID { writer.encoder.appendUUID(tenant.bytes) } else { writer.encoder.appendNull() }
                writer.encoder.appendBytes(deadLetter.rawMessage)
                writer.encoder.appendText(deadLetter.reason)
                if let sqlState = deadLetter.sqlState { writer.encoder.appendText(sqlState) } else { writer.encoder.appendNull() }
                if let detail = deadLetter.detail { writer.encoder.appendText(detail.replacingOccurrences(of: "\0", with: "")) }
                else { writer.encoder.appendNull() }
                try writer.sendIfFull()
            }
        }
    }

    /// Adds the batch's rows to tenant_metrics.audit_log_count per tenant per UTC day (exact:
    /// in the same transaction as the rows).
    private func countEvents(_ rows: ArraySlice<EncodedRow>, on connection: PostgresConnection) throws {
        struct TenantDay: Hashable { var tenant: UUIDValue; var day: Int32 }
        var counts: [TenantDay: Int] = [:]
        for row in rows { counts[TenantDay(tenant: row.tenantID, day: row.unixDay), default: 0] += 1 }
        let keys = counts.keys.sorted { ($0.tenant, $0.day) < ($1.tenant, $1.day) }
        try connection.query("""
            INSERT INTO tenant_metrics (tenant_id, "date", audit_log_count)
            SELECT t, DATE '1970-01-01' + d, n FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS u(t, d, n)
            ON CONFLICT (tenant_id, "date") DO UPDATE
                SET audit_log_count = tenant_metrics.audit_log_count + EXCLUDED.audit_log_count, updated_at = now()
            """, [
                "{" + keys.map { $0.tenant.description }.joined(separator: ",") + "}",
                "{" + keys.map { String($0.day) }.joined(separator: ",") + "}",
                "{" + keys.map { String(counts[$0]!) }.joined(separator: ",") + "}",
            ])
    }
}
