import AuditCore
import Postgres

extension AuditEvent {
    /// The columns of `copyColumns`, in order.
    package static let copyColumnCount = 11
    package static let copyColumns =
        #"id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address, user_agent, custom_metadata"#

    /// Appends this event as one binary COPY row of `copyColumns`: straight from the decoded
    /// values, with no intermediate strings.
    package func appendCopyRow(to encoder: inout BinaryCopyEncoder) {
        encoder.beginRow(fieldCount: Self.copyColumnCount)
        encoder.appendUUID(id.bytes)
        encoder.appendUUID(tenantID.bytes)
        if let userID { encoder.appendUUID(userID.bytes) } else { encoder.appendNull() }
        encoder.appendText(action)
        appendOptionalText(resourceType, to: &encoder)
        appendOptionalText(resourceID, to: &encoder)
        encoder.appendText(severity.copyText)
        encoder.appendTimestamp(unixMicroseconds: timestamp)
        switch ipAddress {
        case .v4(let address):
            encoder.appendInet(.v4(unsafeBitCast(address.bigEndian, to: (UInt8, UInt8, UInt8, UInt8).self)))
        case .v6(let high, let low):
            encoder.appendInet(.v6(unsafeBitCast((high.bigEndian, low.bigEndian),
                                                 to: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8).self)))
        case nil:
            encoder.appendNull()
        }
        appendOptionalText(userAgent, to: &encoder)
        if let metadata { encoder.appendJSONB(metadata) } else { encoder.appendNull() }
    }

    @inline(__always)
    private func appendOptionalText(_ text: UnsafeRawBufferPointer?, to encoder: inout BinaryCopyEncoder) {
        if let text { encoder.appendText(text) } else { encoder.appendNull() }
    }
}

extension Severity {
    /// The stored upper-case name as static UTF-8 (no String on the hot path).
    var copyText: UnsafeRawBufferPointer {
        let name: StaticString = switch self {
        case .debug: "DEBUG"
        case .info: "INFO"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
        return UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
    }
}

