/// AWS CloudTrail records (the `eventVersion` 1.x shape): `eventID`, `eventTime`, `eventSource`
/// and `eventName`, `userIdentity`, `sourceIPAddress`, `userAgent`, `resources`, `errorCode`.
enum CloudTrail {
    /// Where the event's address and user agent are read from (`EventFormat.sourcePaths`).
    static let ipAddressPath = "sourceIPAddress"
    static let userAgentPath = "userAgent"

    static func map(_ record: [String: Any]) throws(Rejection) -> MappedEvent {
        let format = "CloudTrail"
        let id = try FormatField.required(record, "eventID", format: format)
        let source = try FormatField.required(record, "eventSource", format: format)
        let name = try FormatField.required(record, "eventName", format: format)
        // "s3.amazonaws.com" + "GetObject" -> "s3.GetObject"
        let service = source.hasSuffix(".amazonaws.com") ? String(source.dropLast(".amazonaws.com".count)) : source
        let resource = (record["resources"] as? [[String: Any]])?.first
        let user = FormatField.string(record, "userIdentity.arn") ?? FormatField.string(record, "userIdentity.principalId")
            ?? FormatField.string(record, "userIdentity.invokedBy")
        return MappedEvent(
            id: DerivedID.uuid(orDerivedFrom: id, format: "cloudtrail"),
            user: user,
            action: "\(service).\(name)",
            resourceType: resource.flatMap { FormatField.string($0, "type") } ?? service,
            resourceID: resource.flatMap { FormatField.string($0, "ARN") },
            // A failed call (AccessDenied, ...) is worth more attention than a successful one.
            severity: FormatField.string(record, "errorCode") == nil ? "INFO" : "WARNING",
            timestamp: try FormatField.required(record, "eventTime", format: format),
            ipAddress: FormatField.string(record, ipAddressPath),
            userAgent: FormatField.string(record, userAgentPath))
    }
}
