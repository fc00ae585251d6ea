import AuditCore
import Evidence
import Foundation
import Logging
import Postgres

/// The SQL of one flush, in one transaction: partitions, the positions' compare-and-set, COPY
/// with poison isolation, dead letters and the counts per tenant and day. Knows nothing of threads,
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
    /// `deadLetters` and any row PostgreSQL refuses, and counts the stored rows in tenant_metrics_delta.
    /// Throws what PostgreSQL throws, labelled with the step that failed (`PostgresError.statement`);
    /// the caller decides whether to retry.
    func run(rows: inout [EncodedRow], deadLetters: [DeadLetter], from committed: [Int32: Int64], to pending: [Int32: Mark],
             layouts: [Int32: Int64], on connection: PostgresConnection) throws -> Result {
        try PostgresError.labelled("creating month partitions (ensure_month_partitions)") {
            try partitions.ensure(rows.distinctMonths, on: connection)
        }
        return try PostgresError.labelled("BEGIN or COMMIT of the flush") {
            try connection.transaction { connection in try write(rows: &rows, deadLetters: deadLetters, from: committed, to: pending,
                                                                 layouts: layouts, on: connection) }
        }
    }

    private func write(rows: inout [EncodedRow], deadLetters: [DeadLetter], from committed: [Int32: Int64], to pending: [Int32: Mark],
                       layouts: [Int32: Int64], on connection: PostgresConnection) throws -> Result {
        // Before this transaction has an id: the feed's horizon waits for writers that hold
        // this lock, and only for them (migration 0011, feed_horizon()).
        try PostgresError.labelled(Self.feedWriterLock) { try connection.execute(Self.feedWriterLock) }
        // Offsets first: the compare-and-set locks this shard's rows and proves no other
        // process has moved them since, before any row is written.
        let advanced = try PostgresError.labelled("advancing ingest_offsets") {
            try StreamOffsets(streams: streams).advance(shard: shard, from: committed, to: pending, layouts: layouts, on: connection)
        }
        if !advanced {
            logger.warning("this batch was already committed (the reply to an earlier COMMIT was lost): not writing it again")
            return Result(stored: rows.count, deadLetters: deadLetters)
        }
        let batchID = try PostgresError.labelled("numbering the batch") { try BatchSealing.nextBatchID(on: connection) }
        rows.sortByTenantAndTime()
        let leaves = rows.map(\.leafHash)
        let rejected = rows.isEmpty ? [] : try PostgresError.labelled("COPY into audit_log") {
            try copyIsolatingPoison(rows[...], batchID: batchID, on: connection)
        }
        // By index, not position: the records of one message (a CloudTrail delivery file)
        // share its position, and those PostgreSQL took are stored and counted.
        let rejectedRows = Set(rejected.map(\.index))
        let stored = rejected.isEmpty ? rows[...] : ArraySlice(rows.indices.filter { !rejectedRows.contains($0) }.map { rows[$0] })
        let allDeadLetters = deadLetters + rejected.map(\.deadLetter)
        var deadLetterLeaves: [TreeHash] = []
        if !allDeadLetters.isEmpty {
            deadLetterLeaves = try PostgresError.labelled("COPY into audit_dead_letter") {
                try insertDeadLetters(allDeadLetters, batchID: batchID, on: connection)
            }
        }
        if !stored.isEmpty {
            try PostgresError.labelled("COPY into tenant_metrics_delta") { try countEvents(stored, on: connection) }
            try PostgresError.labelled("recording the feed's months (tenant_feed_month)") { try recordFeedMonths(stored, on: connection) }
        }
        let storedLeaves = rejected.isEmpty ? leaves : rows.indices.filter { !rejectedRows.contains($0) }.map { leaves[$0] }
        let sealing = BatchSealing(streams: streams, shard: shard)
        try PostgresError.labelled("sealing the batch (audit_batch)") {
            try sealing.seal(batchID: batchID, rows: stored, leaves: storedLeaves, deadLetterLeaves: deadLetterLeaves,
                             from: committed, to: pending, layouts: layouts, on: connection)
        }
        return Result(stored: stored.count, deadLetters: allDeadLetters)
    }

    /// COPYs `rows`; when PostgreSQL refuses them for a data reason (class 22 or 23), bisects (each
    /// attempt under a savepoint) down to the offending rows and returns them (their index in
    /// `rows`) as dead letters with the SQLSTATE. Nothing else is the rows' fault: a timeout, a
    /// lock wait or a lost connection is thrown for the caller to retry, never dead-lettered.
    private func copyIsolatingPoison(_ rows: ArraySlice<EncodedRow>, batchID: Int64,
                                     on connection: PostgresConnection) throws -> [(index: Int, deadLetter: DeadLetter)] {
        try connection.execute("SAVEPOINT batch")
        do {
            try copy(rows, batchID: batchID, on: connection)
            try connection.execute("RELEASE SAVEPOINT batch")
            return []
        } catch let error as PostgresError where error.isDataError && error.sqlState != PostgresError.SQLState.checkViolation {
            try connection.execute("ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch")
            guard rows.count > 1 else {
                let row = rows.first!
                logger.warning("row refused by PostgreSQL, dead-lettered", metadata: [
                    LogKey.partition: "\(row.partition)", LogKey.offset: "\(row.offset)", LogKey.sqlstate: "\(error.sqlState ?? "")"])
                return [(rows.startIndex, DeadLetter(partition: row.partition, offset: row.offset, next: row.next, record: row.record,
                                                     tenantID: row.tenantID,
                                                     rawMessage: row.rawMessage, reason: Rejection.Kind.rejectedByDatabase.rawValue,
                                                     detail: [error.message, error.detail].compactMap { $0 }.joined(separator: ": "),
                                                     sqlState: error.sqlState))]
            }
            let middle = rows.startIndex + rows.count / 2
            return try copyIsolatingPoison(rows[..<middle], batchID: batchID, on: connection)
                + copyIsolatingPoison(rows[middle...], batchID: batchID, on: connection)
        }
    }

    static let feedWriterLock = "LOCK TABLE feed_writer IN ROW EXCLUSIVE MODE"

    /// Each row as encoded, with its batch's id after its columns.
    private func copy(_ rows: ArraySlice<EncodedRow>, batchID: Int64, on connection: PostgresConnection) throws {
        try connection.copyBinary("COPY audit_log (\(AuditEvent.copyColumns), batch_id) FROM STDIN (FORMAT binary)") { writer in
            // Eight rows ahead, the next rows' bytes are loaded while these are copied.
            let ahead = 8
            for index in rows.indices {
                if index + ahead < rows.endIndex {
                    let later = rows[index + ahead]
                    BinaryCopyEncoder.prefetch(later.bytes, count: later.rowLength)
                }
                writer.encoder.beginRow(fieldCount: AuditEvent.copyColumnCount + 1)
                writer.encoder.appendEncodedRows(rows[index].fieldBytes)
                writer.encoder.appendInt64(batchID)
                try writer.sendIfFull()
            }
        }
    }

    /// COPYs the dead letters with the batch's id; returns each one's leaf hash, over its
    /// columns before batch_id as COPY sends them.
    private func insertDeadLetters(_ deadLetters: [DeadLetter], batchID: Int64, on connection: PostgresConnection) throws -> [TreeHash] {
        let sql = "COPY audit_dead_letter (\(DeadLetter.copyColumns), batch_id) FROM STDIN (FORMAT binary)"
        var leaves: [TreeHash] = []
        var fields = BinaryCopyEncoder()
        try connection.copyBinary(sql) { writer in
            for deadLetter in deadLetters {
                fields.removeAll()
                deadLetter.appendCopyFields(source: streams.locate(deadLetter.partition), to: &fields)
                fields.withUnsafeBytes { leaves.append(MerkleTree.leaf(kind: LeafKind.deadLetter, $0)) }
                writer.encoder.beginRow(fieldCount: DeadLetter.copyColumnCount + 1)
                fields.withUnsafeBytes { writer.encoder.appendEncodedRows($0) }
                writer.encoder.appendInt64(batchID)
                try writer.sendIfFull()
            }
        }
        return leaves
    }

    /// Records each (tenant, month) the rows fall in as written by this transaction (migration
    /// 0023), so the feed scans only months written since its cursor. Appended, never updated:
    /// writers of one month do not wait for each other. `rows` are sorted by tenant and time, so
    /// each pair is one run.
    private func recordFeedMonths(_ rows: ArraySlice<EncodedRow>, on connection: PostgresConnection) throws {
        var tenants: [String] = [], months: [String] = []
        var index = rows.startIndex
        while index < rows.endIndex {
            let tenant = rows[index].tenantID, month = rows[index].month
            var end = index + 1
            while end < rows.endIndex, rows[end].tenantID == tenant, rows[end].month == month { end += 1 }
            tenants.append(tenant.description)
            months.append(month.firstDayISO)
            index = end
        }
        _ = try connection.query("""
            INSERT INTO tenant_feed_month (tenant_id, month, last_xid)
            SELECT t, m, pg_current_xact_id() FROM unnest($1::uuid[], $2::date[]) AS u(t, m)
            """, ["{" + tenants.joined(separator: ",") + "}", "{" + months.joined(separator: ",") + "}"])
    }

    /// Appends the batch's counts per tenant per UTC day to tenant_metrics_delta (migration 0010:
    /// no upsert, no row lock; folded into tenant_metrics later, exact in tenant_metrics_current
    /// at this commit). `rows` are sorted by tenant and time, so each (tenant, day) is one run.
    private func countEvents(_ rows: ArraySlice<EncodedRow>, on connection: PostgresConnection) throws {
        try connection.copyBinary(#"COPY tenant_metrics_delta (tenant_id, "date", audit_log_count) FROM STDIN (FORMAT binary)"#) { writer in
            var index = rows.startIndex
            while index < rows.endIndex {
                let tenant = rows[index].tenantID, day = rows[index].unixDay
                var end = index + 1
                while end < rows.endIndex, rows[end].tenantID == tenant, rows[end].unixDay == day { end += 1 }
                writer.encoder.beginRow(fieldCount: 3)
                writer.encoder.appendUUID(tenant.bytes)
                writer.encoder.appendDate(unixDays: day)
                writer.encoder.appendInt64(Int64(end - index))
                try writer.sendIfFull()
                index = end
            }
        }
    }
}
