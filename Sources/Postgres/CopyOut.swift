import CLibPQ

extension PostgresConnection {
    /// Runs `COPY ... TO STDOUT` and hands each chunk of data to `body` (valid only during the
    /// call). Returns the rows copied.
    @discardableResult
    public func copyOut(_ sql: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let started = try run { PQexec($0, sql) }
        let status = PQresultStatus(started)
        guard status == PGRES_COPY_OUT else {
            defer { PQclear(started) }
            try QueryResult.check(started, connection: self)
            throw PostgresError(code: .unexpectedResult, message: "server did not enter COPY OUT for: \(sql)")
        }
        PQclear(started)
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = try withHandle { PQgetCopyData($0, &buffer, 0) }
            if length > 0, let buffer {
                defer { PQfreemem(buffer) }
                try body(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
                continue
            }
            if length == -2 { throw connectionError(fallback: "COPY OUT failed") }
            break  // -1: done
        }
        var rows = 0
        var failure: PostgresError?
        while let result = try withHandle({ PQgetResult($0) }) {
            defer { PQclear(result) }
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                rows = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil {
                failure = PostgresError(result: result, connection: self, code: .queryFailed)
            }
        }
        if let failure { throw failure }
        return rows
    }
}
