import CLibPQ

/// Streams binary COPY data to the server: `COPY ... FROM STDIN (FORMAT binary)`.
///
/// Rows go into `encoder`; `sendIfFull()` ships the buffer as one CopyData message once it holds
/// `chunkSize` bytes, so the server sees tens of KiB per message rather than one per row.
/// `finish()` sends the trailer, ends the COPY and returns the number of rows stored.
///
/// Lives on the connection's thread, between `beginBinaryCopy` and `finish` / `abort`; the
/// connection must not run anything else meanwhile.
public final class BinaryCopyWriter {
    /// CopyData message size. Default: 64 KiB (what other drivers use; 1 MiB was measured slower).
    public static let defaultChunkSize = 64 * 1024

    private let connection: PostgresConnection
    private let chunkSize: Int
    private var isOpen = true
    /// False for a text or CSV COPY: no binary header and trailer around the rows.
    private let isBinary: Bool
    /// Rows are appended here; the header is already in it.
    /// Used by one thread, row after row.
    public var encoder: BinaryCopyEncoder

    init(connection: PostgresConnection, sql: String, chunkSize: Int, binary: Bool = true) throws {
        self.connection = connection
        self.chunkSize = chunkSize
        self.isBinary = binary
        self.encoder = BinaryCopyEncoder(reservingCapacity: chunkSize + 16 * 1024)
        let result = try connection.run { PQexec($0, sql) }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_IN else {
            try QueryResult.check(result, connection: connection)
            throw PostgresError(code: .unexpectedResult, message: "server did not enter COPY IN for: \(sql)")
        }
        if binary { encoder.appendHeader() }
    }

    /// Sends the buffer when it has reached the chunk size.
    @inline(__always)
    public func sendIfFull() throws {
        if encoder.count >= chunkSize { try send() }
    }

    /// Sends whatever is buffered as one CopyData message.
    public func send() throws {
        guard encoder.count > 0 else { return }
        let status = try connection.withHandle { handle in
            encoder.withUnsafeBytes { raw in
                PQputCopyData(handle, raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count))
            }
        }
        guard status == 1 else {
            isOpen = false
            throw connection.connectionError(fallback: "PQputCopyData failed")
        }
        encoder.removeAll()
    }

    /// Ends the COPY and returns the rows stored. Throws the server's error (with SQLSTATE, code
    /// `.copyFailed`) when it rejected any row; then nothing of this COPY is stored.
    @discardableResult
    public func finish() throws -> Int {
        precondition(isOpen, "BinaryCopyWriter.finish() after the COPY ended")
        if isBinary { encoder.appendTrailer() }
        try send()
        isOpen = false
        return try end(errorMessage: nil)
    }

    /// Ends the COPY with a client error, so the server discards it. Never throws.
    public func abort(_ reason: String) {
        guard isOpen else { return }
        isOpen = false
        _ = try? end(errorMessage: reason)
    }

    private func end(errorMessage: String?) throws -> Int {
        let status = try connection.withHandle { PQputCopyEnd($0, errorMessage) }
        guard status == 1 else { throw connection.connectionError(fallback: "PQputCopyEnd failed") }
        // Read every result until NULL; the first error wins.
        var rows = 0
        var failure: PostgresError?
        while let result = try connection.withHandle({ PQgetResult($0) }) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK:
                rows += Int(String(cString: PQcmdTuples(result))) ?? 0
            default:
                if failure == nil, errorMessage == nil {
                    failure = PostgresError(result: result, connection: connection, code: .copyFailed)
                }
            }
        }
        if let failure { throw failure }
        if !connection.isOpen { throw connection.connectionError(fallback: "connection lost during COPY") }
        return rows
    }

    deinit {
        // A writer dropped mid-COPY would leave the session stuck in COPY IN.
        abort("COPY abandoned by client")
    }
}

extension PostgresConnection {
    /// Starts `COPY ... FROM STDIN (FORMAT binary)`; see `BinaryCopyWriter`.
    public func beginBinaryCopy(_ sql: String, chunkSize: Int = BinaryCopyWriter.defaultChunkSize) throws -> BinaryCopyWriter {
        try BinaryCopyWriter(connection: self, sql: sql, chunkSize: chunkSize)
    }

    /// Runs a whole binary COPY: `body` appends rows (calling `sendIfFull()` as it goes); the COPY
    /// is aborted if `body` throws. Returns the rows stored.
    @discardableResult
    public func copyBinary(_ sql: String, _ body: (BinaryCopyWriter) throws -> Void) throws -> Int {
        try copy(with: beginBinaryCopy(sql), body)
    }

    /// Runs a text or CSV COPY (`COPY ... FROM STDIN (FORMAT csv)`): `body` appends the rows'
    /// bytes with `encoder.appendEncodedRows` (calling `sendIfFull()` as it goes). Returns the
    /// rows stored.
    @discardableResult
    public func copyText(_ sql: String, _ body: (BinaryCopyWriter) throws -> Void) throws -> Int {
        try copy(with: BinaryCopyWriter(connection: self, sql: sql, chunkSize: BinaryCopyWriter.defaultChunkSize, binary: false), body)
    }

    /// Runs `body` on an open COPY, then ends it; aborts it if `body` throws.
    private func copy(with writer: BinaryCopyWriter, _ body: (BinaryCopyWriter) throws -> Void) throws -> Int {
        do {
            try body(writer)
        } catch {
            writer.abort("client error: \(error)")
            throw error
        }
        return try writer.finish()
    }
}
