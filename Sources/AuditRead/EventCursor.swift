import Crypto
import Foundation
import Postgres

/// A position in a listing, handed to clients as an opaque string: the listing it belongs to, the
/// tenant and the last row's sort key, signed with HMAC-SHA-256 under the database's
/// `read_cursor_key`. A cursor that was altered, or that belongs to another tenant or listing,
/// is refused (HTTP 400) before any query runs.
public struct EventCursor: Sendable, Equatable {
    public enum Listing: String, Sendable {
        case newestFirst = "d", oldestFirst = "a", feed = "f"
    }

    public var listing: Listing
    public var tenantID: String
    /// The sort key of the last row returned: search (`timestamp` text, `id`); feed (`ingest_xid`,
    /// `id`, `timestamp` text).
    public var key: [String]

    public init(listing: Listing, tenantID: String, key: [String]) {
        self.listing = listing
        self.tenantID = tenantID
        self.key = key
    }
}

/// Signs and checks cursors with the database's key (loaded once per signer).
public final class CursorSigner: Sendable {
    private let key: SymmetricKey

    public init(key: [UInt8]) { self.key = SymmetricKey(data: key) }

    /// Reads `read_cursor_key` (migration 0009) as the connection's role.
    public static func load(on connection: PostgresConnection) throws -> CursorSigner {
        guard let secret = try connection.execute("SELECT secret FROM read_cursor_key").scalar else {
            throw PostgresError(code: .unexpectedResult, message: "read_cursor_key is empty: run audit-ingest migrate")
        }
        return CursorSigner(key: Array(secret.utf8))
    }

    public func encode(_ cursor: EventCursor) -> String {
        let payload = Array(([cursor.listing.rawValue, cursor.tenantID] + cursor.key).joined(separator: "|").utf8)
        return Self.base64URL(payload) + "." + Self.base64URL(Array(HMAC<SHA256>.authenticationCode(for: payload, using: key)))
    }

    /// The cursor in `text` if it is intact and was made for `listing` of `tenantID`.
    public func decode(_ text: String, parameter: String, listing: EventCursor.Listing, tenantID: String) throws(ReadError) -> EventCursor {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Self.bytes(base64URL: parts[0]), let mac = Self.bytes(base64URL: parts[1]),
              HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key) else {
            throw .badParameter(parameter, "not a cursor this server issued (altered or truncated)")
        }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 2, let found = EventCursor.Listing(rawValue: fields[0]) else {
            throw .badParameter(parameter, "not a cursor this server issued")
        }
        guard fields[1] == tenantID else { throw .badParameter(parameter, "this cursor belongs to another tenant") }
        guard found == listing, fields.count == (listing == .feed ? 5 : 4) else {
            throw .badParameter(parameter, "this cursor belongs to another listing (\(Self.describe(found)), not \(Self.describe(listing)))")
        }
        return EventCursor(listing: found, tenantID: tenantID, key: Array(fields[2...]))
    }

    private static func describe(_ listing: EventCursor.Listing) -> String {
        switch listing {
        case .newestFirst: "events, newest first"
        case .oldestFirst: "events, order=asc"
        case .feed: "the feed"
        }
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func bytes(base64URL text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map { Array($0) }
    }
}
