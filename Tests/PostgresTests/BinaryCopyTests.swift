import Foundation
import Postgres
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(2))) struct BinaryCopyTests {
    static let columns = "u uuid, t text, i4 int4, i8 int8, b bool, ts timestamptz, ip inet, j jsonb, d date, f float8, raw bytea"

    /// 2024-03-10T12:34:56.789012+05:30, as microseconds since the Unix epoch.
    static let offsetTimestamp: Int64 = 1_710_054_296_789_012

    @Test func everyTypeRoundTrips() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        try connection.execute("CREATE TABLE t (\(Self.columns))")
        let uuid = UUID(uuidString: "0E2F7C6A-6A4B-4C1E-9B7A-1234567890AB")!

        let stored = try connection.copyBinary("COPY t FROM STDIN (FORMAT binary)") { copy in
            copy.encoder.beginRow(fieldCount: 11)
            copy.encoder.appendUUID(uuid.uuid)
            copy.encoder.appendText("Grüße, 世界 🚀")
            copy.encoder.appendInt32(-2_147_483_648)
            copy.encoder.appendInt64(9_223_372_036_854_775_807)
            copy.encoder.appendBool(true)
            copy.encoder.appendTimestamp(unixMicroseconds: Self.offsetTimestamp)
            copy.encoder.appendInet(InetAddress("192.0.2.33")!)
            copy.encoder.appendJSONB(#"{"a": {"b": [1, 2, {"c": null}]}, "é": "ü"}"#)
            copy.encoder.appendDate(unixDays: 19_792)  // 2024-03-10
            copy.encoder.appendDouble(-1.5)
            copy.encoder.appendBytes([0, 1, 254, 255])

            copy.encoder.beginRow(fieldCount: 11)
            for _ in 0..<11 { copy.encoder.appendNull() }

            copy.encoder.beginRow(fieldCount: 11)
            copy.encoder.appendUUID(uuid.uuid)
            copy.encoder.appendText("")
            copy.encoder.appendInt32(0)
            copy.encoder.appendInt64(-1)
            copy.encoder.appendBool(false)
            copy.encoder.appendTimestamp(unixMicroseconds: -1_000_000)  // before both epochs
            copy.encoder.appendInet(InetAddress("2001:db8::ff00:42:8329")!)
            copy.encoder.appendJSONB("[]")
            copy.encoder.appendDate(unixDays: 0)
            copy.encoder.appendDouble(0)
            copy.encoder.appendBytes([])
            try copy.sendIfFull()
        }
        #expect(stored == 3)

        let rows = try connection.execute("""
            SELECT u::text, t, i4::text, i8::text, b::text, ts::text, host(ip) || '/' || masklen(ip), j::text, d::text, f::text, encode(raw, 'hex')
            FROM t ORDER BY i8 DESC NULLS LAST
            """).rows
        #expect(rows[0] == ["0e2f7c6a-6a4b-4c1e-9b7a-1234567890ab", "Grüße, 世界 🚀", "-2147483648", "9223372036854775807",
                            "true", "2024-03-10 07:04:56.789012+00", "192.0.2.33/32",
                            #"{"a": {"b": [1, 2, {"c": null}]}, "é": "ü"}"#, "2024-03-10", "-1.5", "0001feff"])
        #expect(rows[1] == ["0e2f7c6a-6a4b-4c1e-9b7a-1234567890ab", "", "0", "-1", "false", "1969-12-31 23:59:59+00",
                            "2001:db8::ff00:42:8329/128", "[]", "1970-01-01", "0", ""])
        #expect(rows[2] == Array(repeating: nil, count: 11))
    }

    @Test func manyRowsAreShippedInChunks() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        try connection.execute("CREATE TABLE t (n int8, s text)")
        let writer = try connection.beginBinaryCopy("COPY t FROM STDIN (FORMAT binary)", chunkSize: 4096)
        var largestBuffer = 0
        for n in 0..<50_000 {
            writer.encoder.beginRow(fieldCount: 2)
            writer.encoder.appendInt64(Int64(n))
            writer.encoder.appendText("row \(n)")
            largestBuffer = max(largestBuffer, writer.encoder.count)
            try writer.sendIfFull()
        }
        #expect(try writer.finish() == 50_000)
        #expect(largestBuffer < 4096 + 64, "the buffer is shipped once it reaches the chunk size")
        let summary = try connection.execute("SELECT count(*), sum(n), count(DISTINCT s) FROM t").rows[0]
        #expect(summary == ["50000", "1249975000", "50000"])
    }

    @Test func rowWithoutPartitionFailsWithSQLState23514() throws {
        let connection = try PostgresConnection(try TestDatabase.create())
        try connection.execute("""
            CREATE TABLE events (id int8, at timestamptz) PARTITION BY RANGE (at);
            CREATE TABLE events_2024_01 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
            """)
        let error = try #require(throws: PostgresError.self) {
            try connection.copyBinary("COPY events FROM STDIN (FORMAT binary)") { copy in
                for (id, micros) in [(1, Int64(1_704_067_200_000_000)), (2, Int64(1_709_251_200_000_000))] {  // Jan, Mar
                    copy.encoder.beginRow(fieldCount: 2)
                    copy.encoder.appendInt64(Int64(id))
                    copy.encoder.appendTimestamp(unixMicroseconds: micros)
                }
            }
        }
        #expect(error.code == .copyFailed)
        #expect(error.sqlState == "23514")
        #expect(error.isDataError)
        #expect(!error.isRetriable)
        // Nothing of the failed COPY is stored and the session goes on.
        #expect(try connection.execute("SELECT count(*) FROM events").scalar == "0")
    }

    @Test func abortDiscardsTheCopy() throws {
        struct Stop: Error {}
        let connection = try PostgresConnection(try TestDatabase.create())
        try connection.execute("CREATE TABLE t (n int4)")
        #expect(throws: Stop.self) {
            try connection.copyBinary("COPY t FROM STDIN (FORMAT binary)") { copy in
                copy.encoder.beginRow(fieldCount: 1)
                copy.encoder.appendInt32(1)
                throw Stop()
            }
        }
        #expect(try connection.execute("SELECT count(*) FROM t").scalar == "0")
    }

    @Test func inetParsing() {
        #expect(InetAddress("10.0.0.1")?.description == "10.0.0.1")
        #expect(InetAddress("::ffff:10.0.0.1")?.description == "::ffff:10.0.0.1")
        #expect(InetAddress("2001:DB8::1")?.description == "2001:db8::1")
        #expect(InetAddress("256.0.0.1") == nil)
        #expect(InetAddress("1.2.3") == nil)
        #expect(InetAddress("fe80::1%eth0") == nil)
        #expect(InetAddress("") == nil)
    }
}
