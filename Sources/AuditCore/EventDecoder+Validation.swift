import Foundation

/// Checking decoded fields against the contract (DESIGN) and building the event.
extension EventDecoder {
    func validate(_ fields: Fields) throws(Rejection) -> AuditEvent {
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

    func uuid(_ value: JSONCursor.StringValue?, _ name: String, required: Bool) throws(Rejection) -> UUIDValue? {
        guard let value else {
            if required { throw Rejection(.missingField, field: name, "\(name) is required") }
            return nil
        }
        guard let uuid = UUIDValue(parsing: value.bytes) else {
            throw Rejection(.invalidUUID, field: name, "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
        }
        return uuid
    }

    func text(_ value: JSONCursor.StringValue?, _ name: String, limit: Int) throws(Rejection) -> UnsafeRawBufferPointer? {
        guard let value else { return nil }
        if value.containsNUL { throw Rejection(.nulCharacter, field: name, "text cannot contain NUL (\\u0000)") }
        if value.bytes.count > limit, characterCount(value.bytes) > limit {
            throw Rejection(.tooLong, field: name, "more than \(limit) characters")
        }
        return value.bytes
    }

    func latestAllowedTimestamp() -> Int64 {
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
