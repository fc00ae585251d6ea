import Foundation
import CLibPQ

/// The rows of a query, copied out of libpq as text (text result format). Meant for control-plane
/// queries (catalog, offsets, statistics); bulk data goes through COPY.
public struct QueryResult: Sendable {
    /// Column names, in order.
    public let columns: [String]
    /// Values as text; `nil` is SQL NULL.
    public let rows: [[String?]]
    /// Rows affected by INSERT/UPDATE/DELETE/COPY (`PQcmdTuples`), 0 when not applicable.
    public let affectedRows: Int

    /// Takes ownership of `result` (PQclear on every path) and throws if it is an error.
    init(consuming result: OpaquePointer, connection: PostgresConnection) throws {
        defer { PQclear(result) }
        try Self.check(result, connection: connection)
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        rows = (0..<rowCount).map { row in
            (0..<columnCount).map { column in
                PQgetisnull(result, Int32(row), Int32(column)) == 1
                    ? nil
                    : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            }
        }
        affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// The value at `row`, `column` (by name). Traps on an unknown column: a programming error.
    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else {
            preconditionFailure("no column \(column) in \(columns)")
        }
        return rows[row][index]
    }

    /// The first column of the first row, if any.
    public var scalar: String? { rows.first?.first ?? nil }

    /// Throws the server's error for a failed result (status other than OK / tuples / copy / empty).
    static func check(_ result: OpaquePointer, connection: PostgresConnection) throws {
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_SINGLE_TUPLE:
            return
        default:
            throw PostgresError(result: result, connection: connection, code: .queryFailed)
        }
    }
}

extension PostgresError {
    /// Reads SQLSTATE, message, detail and hint from an error result.
    init(result: OpaquePointer, connection: PostgresConnection, code: Code) {
        func field(_ name: Int32) -> String? {
            PQresultErrorField(result, name).map { String(cString: $0) }
        }
        // libpq's PG_DIAG_* field codes are character constants.
        let sqlState = field(Int32(UInt8(ascii: "C")))
        let primary = field(Int32(UInt8(ascii: "M")))
            ?? String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
        // The server sends a SQLSTATE with every error it reports. An error without one is
        // libpq's own: the socket failed (a server that crashed or failed over closes it with
        // nothing said, and libpq may still report the session OK until it next reads).
        self.init(
            code: sqlState == nil ? .connectionLost : code,
            sqlState: sqlState,
            message: primary.isEmpty ? "server error" : primary,
            detail: field(Int32(UInt8(ascii: "D"))),
            hint: field(Int32(UInt8(ascii: "H")))
        )
    }
}
