import Foundation
import Postgres

/// Where `audit-ingest stream` delivers events (`stream_destination`, migration 0024): one
/// tenant's or every tenant's, as webhook JSON batches, Splunk HEC events, NDJSON files or
/// Kafka messages.
public struct StreamDestination: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// POST of a JSON batch, signed with HMAC-SHA256 when the destination has a secret.
        case webhook
        /// Splunk's HTTP Event Collector: the secret is the HEC token.
        case splunkHEC = "splunk_hec"
        /// NDJSON segments in a directory (`file:///DIR`), finished by size and age (`FileSegments`).
        case file
        /// One message per event on a Kafka topic (`kafka://HOST:PORT,.../TOPIC`), keyed by
        /// tenant; the secret holds librdkafka properties (`KafkaTopicDestination`).
        case kafka
    }

    public enum State: String, Sendable {
        case active, paused, failed
    }

    /// Who made it: an operator (CLI, secrets by reference) or the tenant (its token, through the
    /// read API: secret sealed, URL checked to be public, `DestinationAddress`).
    public enum ManagedBy: String, Sendable {
        case `operator`, tenant
    }

    public var id: String
    public var name: String
    /// nil: every tenant.
    public var tenantID: String?
    public var kind: Kind
    public var url: String
    /// `env:NAME` or `file:PATH`: where the streamer reads the secret. Never the secret itself.
    public var secretReference: String?
    public var batchSize: Int
    /// Marked failed once deliveries have failed for this long without a success.
    public var failAfter: Duration
    /// Every tenant's cursor starts after this transaction id; nil: from the first event.
    public var startXID: UInt64?
    public var state: State
    public var stateReason: String?
    public var managedBy: ManagedBy
    /// The secret under the operator's stream secret key (`SealedSecret`), and that key's id.
    public var sealedSecret: [UInt8]?
    public var secretKeyID: String?
    /// A file destination's segments are finished at this size, or this old.
    public var rotateBytes: Int64?
    public var rotateSeconds: Int?
    /// Since when its deliveries have failed without one succeeding (0029); nil: not failing.
    public var failingSince: String?

    /// Whether a secret signs or authenticates deliveries (a reference or a sealed one).
    public var hasSecret: Bool { secretReference != nil || sealedSecret != nil }

    static let columns = """
        id::text, name, tenant_id::text, kind, url, secret_ref, batch_size::text,
        extract(epoch FROM fail_after)::bigint::text, start_xid::text, state, state_reason,
        managed_by, encode(secret_sealed, 'base64'), secret_key_id, rotate_bytes::text, rotate_seconds::text, failing_since::text
        """

    init?(row: [String?]) {
        guard row.count >= 16, let id = row[0], let name = row[1], let kind = row[3].flatMap(Kind.init), let url = row[4],
              let managedBy = row[11].flatMap(ManagedBy.init), let batchSize = row[6].flatMap({ Int($0) }), let failAfter = row[7].flatMap({ Int64($0) }),
              let state = row[9].flatMap(State.init) else { return nil }
        self.id = id
        self.name = name
        tenantID = row[2]
        self.kind = kind
        self.url = url
        secretReference = row[5]
        self.batchSize = batchSize
        self.failAfter = .seconds(failAfter)
        startXID = row[8].flatMap { UInt64($0) }
        self.state = state
        stateReason = row[10]
        self.managedBy = managedBy
        sealedSecret = row[12].flatMap { Data(base64Encoded: $0, options: .ignoreUnknownCharacters) }.map { Array($0) }
        secretKeyID = row[13]
        rotateBytes = row[14].flatMap { Int64($0) }
        rotateSeconds = row[15].flatMap { Int($0) }
        failingSince = row.count > 16 ? row[16] : nil
    }

    /// The URL without a password or query (either may hold a secret).
    public static func shown(_ url: String) -> String {
        var text = url
        if let query = text.firstIndex(of: "?") { text = String(text[..<query]) + "?***" }
        if let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@"),
           !text[scheme.upperBound..<at].contains("/") {
            text = String(text[..<scheme.upperBound]) + "***" + String(text[at...])
        }
        return text
    }

    /// The secret's bytes: read from its reference, or opened with one of `keys`; nil when it has none.
    public func secret(keys: [SealedSecret.Key]) throws -> [UInt8]? {
        if let sealedSecret { return try SealedSecret.open(sealedSecret, keyID: secretKeyID, destinationID: id, with: keys) }
        return try SecretReference.read(secretReference)
    }
}

/// The destinations' rows: read by the streamer, managed by the CLI.
public enum StreamDestinations {
    public static func all(on connection: PostgresConnection) throws -> [StreamDestination] {
        try connection.execute("SELECT \(StreamDestination.columns) FROM stream_destination ORDER BY tenant_id NULLS FIRST, name")
            .rows.compactMap(StreamDestination.init(row:))
    }

    /// By id, or by name (unique per tenant; `tenantID` nil names an every-tenant destination).
    public static func find(_ reference: String, tenantID: String? = nil, on connection: PostgresConnection) throws -> StreamDestination? {
        try connection.query("""
            SELECT \(StreamDestination.columns) FROM stream_destination
            WHERE id::text = $1 OR (name = $1 AND tenant_id IS NOT DISTINCT FROM $2::uuid)
            """, [reference, tenantID]).rows.first.flatMap(StreamDestination.init(row:))
    }

    public struct New: Sendable {
        public var name: String
        public var tenantID: String?
        public var kind: StreamDestination.Kind
        public var url: String
        public var secretReference: String?
        public var batchSize: Int
        public var failAfter: Duration
        /// Only events written from now on (the feed's horizon), else every stored event.
        public var fromNow: Bool
        /// A file destination's rotation (both, for `.file` only).
        public var rotateBytes: Int64?
        public var rotateSeconds: Int?

        public init(name: String, tenantID: String?, kind: StreamDestination.Kind, url: String, secretReference: String?,
                    batchSize: Int, failAfter: Duration, fromNow: Bool, rotateBytes: Int64? = nil, rotateSeconds: Int? = nil) {
            self.rotateBytes = rotateBytes
            self.rotateSeconds = rotateSeconds
            self.name = name
            self.tenantID = tenantID
            self.kind = kind
            self.url = url
            self.secretReference = secretReference
            self.batchSize = batchSize
            self.failAfter = failAfter
            self.fromNow = fromNow
        }
    }

    public static func create(_ new: New, on connection: PostgresConnection) throws -> StreamDestination {
        let row = try connection.query("""
            INSERT INTO stream_destination (name, tenant_id, kind, url, secret_ref, batch_size, fail_after, start_xid,
                                            rotate_bytes, rotate_seconds)
            VALUES ($1, $2::uuid, $3, $4, $5, $6::integer, make_interval(secs => $7::bigint),
                    CASE WHEN $8::boolean THEN feed_horizon() END, $9::bigint, $10::integer)
            RETURNING \(StreamDestination.columns)
            """, [new.name, new.tenantID, new.kind.rawValue, new.url, new.secretReference, String(new.batchSize),
                  String(new.failAfter.components.seconds), new.fromNow ? "true" : "false",
                  new.rotateBytes.map { String($0) }, new.rotateSeconds.map { String($0) }]).rows.first
        guard let destination = row.flatMap(StreamDestination.init(row:)) else {
            throw PostgresError(code: .unexpectedResult, message: "stream_destination: the new row was not returned")
        }
        return destination
    }

    /// Sets the state (pause, resume, mark failed); returns false when there is no such destination.
    /// Returns once a batch in flight, if any, is delivered and its cursor moved (`exclusively`).
    @discardableResult
    public static func setState(_ state: StreamDestination.State, reason: String?, id: String, on connection: PostgresConnection) throws -> Bool {
        let found = try connection.query("""
            UPDATE stream_destination SET state = $2, state_reason = $3, updated_at = now(),
                failing_since = CASE WHEN $2 = 'failed' THEN NULL ELSE failing_since END
            WHERE id = $1::uuid
            """, [id, state.rawValue, reason]).affectedRows == 1
        if found && state != .active { try exclusively(id, on: connection) {} }
        return found
    }

    /// Notes a failed delivery; returns how long the destination has been failing, counted from
    /// the first failure since its last success, as the database holds it (a restarted streamer
    /// goes on counting).
    public static func noteFailure(id: String, on connection: PostgresConnection) throws -> Duration {
        let seconds = try connection.query("""
            UPDATE stream_destination SET failing_since = coalesce(failing_since, now()) WHERE id = $1::uuid
            RETURNING extract(epoch FROM now() - failing_since)::float8
            """, [id]).scalar.flatMap { Double($0) } ?? 0
        return .milliseconds(Int64(seconds * 1000))
    }

    /// A delivery succeeded: the destination is no longer failing.
    public static func noteSuccess(id: String, on connection: PostgresConnection) throws {
        try connection.query("UPDATE stream_destination SET failing_since = NULL WHERE id = $1::uuid AND failing_since IS NOT NULL", [id])
    }

    /// Moves every tenant's cursor back to the first event ingested at or after `since` (nil: the
    /// first event stored). Events after it are delivered again, with the same ids.
    public static func rewind(id: String, since: String?, on connection: PostgresConnection) throws {
        try exclusively(id, on: connection) {
            try connection.transaction { connection in
                try connection.query("""
                    UPDATE stream_destination SET updated_at = now(),
                        start_xid = CASE WHEN $2::timestamptz IS NULL THEN NULL
                                         ELSE coalesce(stream_first_xid_since($2::timestamptz), feed_horizon()) END
                    WHERE id = $1::uuid
                    """, [id, since])
                try connection.query("DELETE FROM stream_cursor WHERE destination_id = $1::uuid", [id])
            }
        }
    }

    public static func delete(id: String, on connection: PostgresConnection) throws -> Bool {
        try exclusively(id, on: connection) {
            try connection.query("DELETE FROM stream_destination WHERE id = $1::uuid", [id]).affectedRows == 1
        }
    }

    // MARK: The batch in flight

    /// A delivery holds the destination's advisory lock from checking that it is active to moving
    /// its cursor. So two streamers never send one destination's batches at once (each reads the
    /// cursor the other moved: still in order, without duplicates), and `pause`, `rewind` and
    /// `delete`, which wait for the lock, return only once the batch in flight is done.
    static func lockKey(_ id: String) -> String { "audit-ingest stream " + id }

    enum Turn {
        /// Deliver to it, as it is now (a rewind may have moved its start).
        case deliver(StreamDestination)
        /// No longer active: paused, failed or deleted.
        case stopped
        /// Another streamer is sending a batch to it.
        case busy
    }

    /// Takes the lock without waiting, and reads the destination afresh; the lock is held only for `.deliver`.
    static func beginDelivery(_ id: String, on connection: PostgresConnection) throws -> Turn {
        guard try connection.query("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", [lockKey(id)]).scalar == "t" else {
            return .busy
        }
        guard let current = try find(id, on: connection), current.state == .active else {
            try endDelivery(id, on: connection)
            return .stopped
        }
        return .deliver(current)
    }

    static func endDelivery(_ id: String, on connection: PostgresConnection) throws {
        try connection.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey(id)])
    }

    private static func exclusively<T>(_ id: String, on connection: PostgresConnection, _ body: () throws -> T) throws -> T {
        try connection.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [lockKey(id)])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey(id)]) }
        return try body()
    }
}
