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
    private var latestAllowed: Int64 = 0
    private var decodesUntilClockRefresh = 0

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
    private struct Fields {
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

    private func validate(_ fields: Fields) throws(Rejection) -> AuditEvent {
        let id = try uuid(fields.id, "id", required: true)!
        let tenantID = try uuid(fields.tenantID, "tenant_id", required: true)!
        let userID = try uuid(fields.userID, "user_id", required: false)
        guard let action = try text(fields.action, "action", limit: DecoderConfiguration.actionLimit) else {
            throw Rejection(.missingField, field: "action", "action is required")
        }
        guard action.count > 0 else { throw Rejection(.emptyField, field: "action", "action must not be empty") }
        let resourceType = try text(fields.resourceType, "resource_type", limit: DecoderConfiguration.resourceTypeLimit)
        let resourceID = try text(fields.resourceID, "resource_id", limit: DecoderConfiguration.resourceIDLimit)
        let userAgent = try text(fields.userAgent, "user_agent", limit: DecoderConfiguration.userAgentLimit)

        guard let severityText = fields.severity else {
            throw Rejection(.missingField, field: "severity", "severity is required")
        }
        guard let severity = Severity(caseInsensitive: severityText.bytes) else {
            throw Rejection(.unknownSeverity, field: "severity", "expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        }

        guard let timestampText = fields.timestamp else {
            throw Rejection(.missingField, field: "timestamp", "timestamp is required")
        }
        let timestamp: Int64
        switch RFC3339.parse(timestampText.bytes) {
        case .success(let value): timestamp = value
        case .failure(let box):
            switch box.failure {
            case .missingOffset:
                throw Rejection(.timestampWithoutOffset, field: "timestamp", "RFC 3339 needs Z or ±HH:MM")
            case .malformed(let why):
                throw Rejection(.invalidTimestamp, field: "timestamp", why)
            }
        }
        guard timestamp >= configuration.earliestTimestamp, timestamp <= latestAllowedTimestamp() else {
            throw Rejection(.timestampOutOfRange, field: "timestamp",
                            "outside the plausibility window (earliest 2000-01-01 by default, latest now + \(configuration.maximumFutureSkew))")
        }

        if let cutoff = configuration.retentionCutoff, timestamp < cutoff {
            throw Rejection(.olderThanRetention, "stamped before the retention cut-off; its month is pruned or due to be")
        }

        var ipAddress: IPAddress?
        if let ipText = fields.ipAddress {
            if ipText.containsNUL { throw Rejection(.nulCharacter, field: "ip_address", "text cannot contain NUL (\\u0000)") }
            guard let parsed = IPAddress(parsing: ipText.bytes) else {
                throw Rejection(.invalidIPAddress, field: "ip_address", "not an IPv4 or IPv6 host address")
            }
            ipAddress = parsed
        }
        return AuditEvent(id: id, tenantID: tenantID, userID: userID, action: action, resourceType: resourceType,
                          resourceID: resourceID, severity: severity, timestamp: timestamp, ipAddress: ipAddress,
                          userAgent: userAgent, metadata: fields.metadata)
    }

    private func uuid(_ value: JSONCursor.StringValue?, _ name: String, required: Bool) throws(Rejection) -> UUIDValue? {
        guard let value else {
            if required { throw Rejection(.missingField, field: name, "\(name) is required") }
            return nil
        }
        guard let uuid = UUIDValue(parsing: value.bytes) else {
            throw Rejection(.invalidUUID, field: name, "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
        }
        return uuid
    }

    private func text(_ value: JSONCursor.StringValue?, _ name: String, limit: Int) throws(Rejection) -> UnsafeRawBufferPointer? {
        guard let value else { return nil }
        if value.containsNUL { throw Rejection(.nulCharacter, field: name, "text cannot contain NUL (\\u0000)") }
        if value.bytes.count > limit, characterCount(value.bytes) > limit {
            throw Rejection(.tooLong, field: name, "more than \(limit) characters")
        }
        return value.bytes
    }

    private func latestAllowedTimestamp() -> Int64 {
        if let fixedNow = configuration.fixedNow {
            return fixedNow + configuration.maximumFutureSkew.components.seconds * 1_000_000
        }
        // The clock is read every 4096 events: a drift of milliseconds against a 24 h window.
        if decodesUntilClockRefresh == 0 {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            latestAllowed = (Int64(now.tv_sec) + configuration.maximumFutureSkew.components.seconds) * 1_000_000
            decodesUntilClockRefresh = 4096
        }
        decodesUntilClockRefresh -= 1
        return latestAllowed
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
