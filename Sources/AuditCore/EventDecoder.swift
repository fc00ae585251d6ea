import Foundation

/// Turns one message (a Kafka value or an NDJSON line) into an `AuditEvent` or a `Rejection`.
/// It refuses everything PostgreSQL would refuse in a COPY of the event, so a decoded event
/// cannot fail a batch for a data reason.
///
/// Single-threaded: one decoder per decoding thread. The returned event's text fields point into
/// the message and into this decoder's scratch space, valid until the next `decode`.
public final class EventDecoder {
    public let configuration: DecoderConfiguration
    /// Unescaped strings of the current message; as large as the largest message. Owned and freed
    /// by this decoder.
    private let scratch: UnsafeMutablePointer<UInt8>
    var latestAllowed: Int64 = 0
    var decodesUntilClockRefresh = 0

    public init(configuration: DecoderConfiguration = .init()) {
        self.configuration = configuration
        scratch = .allocate(capacity: configuration.maxEventBytes + 16)
    }

    deinit { scratch.deallocate() }

    /// A rejection carries the event's `tenant_id` whenever that field was read and parses, so a
    /// rejected event is routed (and accounted) by tenant like an accepted one.
    public func decode(_ message: UnsafeRawBufferPointer) -> Result<AuditEvent, Rejection> {
        var fields = Fields()
        do {
            return .success(try decodeThrowing(message, into: &fields))
        } catch {
            var rejection = error
            rejection.tenantID = fields.tenantID.flatMap { UUIDValue(parsing: $0.bytes) }
            return .failure(rejection)
        }
    }

    public func decode(_ message: [UInt8]) -> Result<AuditEvent, Rejection> {
        message.withUnsafeBytes { decode($0) }
    }

    // MARK: Private

    private func decodeThrowing(_ message: UnsafeRawBufferPointer, into fields: inout Fields) throws(Rejection) -> AuditEvent {
        guard message.count <= configuration.maxEventBytes else {
            throw Rejection(.tooLarge, "\(message.count) bytes, limit \(configuration.maxEventBytes)")
        }
        guard let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count > 0 else {
            throw Rejection(.emptyMessage, "the message is empty")
        }
        guard isValidUTF8(message) else { throw Rejection(.invalidUTF8, "the message is not valid UTF-8") }

        var cursor = JSONCursor(base: base, count: message.count, scratch: scratch)
        cursor.skipWhitespace()
        guard !cursor.isAtEnd else { throw Rejection(.emptyMessage, "the message holds only whitespace") }
        guard cursor.current == 0x7B else {
            _ = try cursor.skipValue(depth: 0, maxDepth: configuration.maxMetadataDepth)
            throw Rejection(.notAnObject, "the message is JSON but not an object")
        }
        cursor.index += 1

        cursor.skipWhitespace()
        if !cursor.isAtEnd, cursor.current == 0x7D {
            cursor.index += 1
        } else {
            while true {
                cursor.skipWhitespace()
                guard !cursor.isAtEnd, cursor.current == 0x22 else { throw cursor.invalid("expected a key") }
                let key = try cursor.readString()
                try cursor.expect(0x3A, "':'")
                cursor.skipWhitespace()
                guard !cursor.isAtEnd else { throw cursor.invalid("expected a value") }
                try readField(key.bytes, cursor: &cursor, into: &fields)
                cursor.skipWhitespace()
                guard !cursor.isAtEnd else { throw cursor.invalid("unterminated object") }
                if cursor.current == 0x2C { cursor.index += 1; continue }
                if cursor.current == 0x7D { cursor.index += 1; break }
                throw cursor.invalid("expected ',' or '}'")
            }
        }
        cursor.skipWhitespace()
        guard cursor.isAtEnd else { throw cursor.invalid("unexpected characters after the object") }
        return try validate(fields)
    }

    /// The raw field values found, before their rules are applied.
    struct Fields {
        var id: JSONCursor.StringValue?
        var tenantID: JSONCursor.StringValue?
        var userID: JSONCursor.StringValue?
        var action: JSONCursor.StringValue?
        var resourceType: JSONCursor.StringValue?
        var resourceID: JSONCursor.StringValue?
        var severity: JSONCursor.StringValue?
        var timestamp: JSONCursor.StringValue?
        var ipAddress: JSONCursor.StringValue?
        var userAgent: JSONCursor.StringValue?
        var metadata: UnsafeRawBufferPointer?
        /// One bit per `Key` already read.
        var seen: UInt16 = 0
    }

    private func readField(_ key: UnsafeRawBufferPointer, cursor: inout JSONCursor, into fields: inout Fields) throws(Rejection) {
        let known = Key(key)
        if let known {
            let bit: UInt16 = 1 << known.rawValue
            guard fields.seen & bit == 0 else {
                throw Rejection(.duplicateField, field: known.name, "\(known.name) is given more than once")
            }
            fields.seen |= bit
        }
        switch known {
        case .id: fields.id = try stringOrNull(&cursor, "id")
        case .tenantID: fields.tenantID = try stringOrNull(&cursor, "tenant_id")
        case .userID: fields.userID = try stringOrNull(&cursor, "user_id")
        case .action: fields.action = try stringOrNull(&cursor, "action")
        case .resourceType: fields.resourceType = try stringOrNull(&cursor, "resource_type")
        case .resourceID: fields.resourceID = try stringOrNull(&cursor, "resource_id")
        case .severity: fields.severity = try stringOrNull(&cursor, "severity")
        case .timestamp: fields.timestamp = try stringOrNull(&cursor, "timestamp")
        case .ipAddress: fields.ipAddress = try stringOrNull(&cursor, "ip_address")
        case .userAgent: fields.userAgent = try stringOrNull(&cursor, "user_agent")
        case .metadata:
            switch cursor.current {
            case 0x6E:
                try cursor.skipLiteral("null")
                fields.metadata = nil
            case 0x7B:
                let start = cursor.index
                let containsNUL = try cursor.skipValue(depth: 0, maxDepth: configuration.maxMetadataDepth)
                let length = cursor.index - start
                if containsNUL { throw Rejection(.nulCharacter, field: "metadata", "\\u0000 is not allowed in jsonb") }
                guard length <= configuration.maxMetadataBytes else {
                    throw Rejection(.tooLarge, field: "metadata", "\(length) bytes, limit \(configuration.maxMetadataBytes)")
                }
                fields.metadata = UnsafeRawBufferPointer(start: cursor.base + start, count: length)
            default:
                _ = try cursor.skipValue(depth: 0, maxDepth: configuration.maxMetadataDepth)
                throw Rejection(.metadataNotObject, field: "metadata", "metadata must be a JSON object or null")
            }
        case nil:
            _ = try cursor.skipValue(depth: 0, maxDepth: configuration.maxMetadataDepth)  // unknown: ignored
        }
    }

    private func stringOrNull(_ cursor: inout JSONCursor, _ name: String) throws(Rejection) -> JSONCursor.StringValue? {
        switch cursor.current {
        case 0x22:
            return try cursor.readString()
        case 0x6E:
            try cursor.skipLiteral("null")
            return nil
        default:
            _ = try cursor.skipValue(depth: 0, maxDepth: configuration.maxMetadataDepth)
            throw Rejection(.wrongType, field: name, "\(name) must be a string")
        }
    }
}

/// The known top-level keys (the contract's fields).
private enum Key: UInt16 {
    case id, tenantID, userID, action, resourceType, resourceID, severity, timestamp, ipAddress, userAgent, metadata

    var name: String {
        switch self {
        case .id: "id"
        case .tenantID: "tenant_id"
        case .userID: "user_id"
        case .action: "action"
        case .resourceType: "resource_type"
        case .resourceID: "resource_id"
        case .severity: "severity"
        case .timestamp: "timestamp"
        case .ipAddress: "ip_address"
        case .userAgent: "user_agent"
        case .metadata: "metadata"
        }
    }

    @inline(__always)
    init?(_ bytes: UnsafeRawBufferPointer) {
        func matches(_ name: StaticString) -> Bool {
            name.utf8CodeUnitCount == bytes.count && memcmp(bytes.baseAddress!, name.utf8Start, bytes.count) == 0
        }
        switch bytes.count {
        case 2: if matches("id") { self = .id; return }
        case 6: if matches("action") { self = .action; return }
        case 7: if matches("user_id") { self = .userID; return }
        case 8:
            if matches("severity") { self = .severity; return }
            if matches("metadata") { self = .metadata; return }
        case 9:
            if matches("tenant_id") { self = .tenantID; return }
            if matches("timestamp") { self = .timestamp; return }
        case 10: if matches("user_agent") { self = .userAgent; return }
        case 11:
            if matches("resource_id") { self = .resourceID; return }
        case 13:
            if matches("resource_type") { self = .resourceType; return }
        default: break
        }
        if bytes.count == 10, matches("ip_address") { self = .ipAddress; return }
        return nil
    }
}
