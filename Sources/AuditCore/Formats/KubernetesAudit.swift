/// Kubernetes `audit.k8s.io/v1` `Event`: `auditID` and `stage` (one request logs up to four
/// stages, each its own event), `verb`, `objectRef`, `user.username`, `sourceIPs`, `userAgent`,
/// `responseStatus.code`, `stageTimestamp`.
enum KubernetesAudit {
    /// Where the event's address and user agent are read from (`EventFormat.sourcePaths`).
    static let ipAddressPath = "sourceIPs"
    static let userAgentPath = "userAgent"

    static func map(_ record: [String: Any]) throws(Rejection) -> MappedEvent {
        let format = "Kubernetes audit"
        let auditID = try FormatField.required(record, "auditID", format: format)
        let stage = try FormatField.required(record, "stage", format: format)
        let verb = try FormatField.required(record, "verb", format: format)
        let resource = FormatField.string(record, "objectRef.resource")
        let name = FormatField.string(record, "objectRef.name")
        let namespace = FormatField.string(record, "objectRef.namespace")
        let code = FormatField.int(record, "responseStatus.code") ?? 0
        var timestamp = FormatField.string(record, "stageTimestamp") ?? ""
        if timestamp.isEmpty { timestamp = try FormatField.required(record, "requestReceivedTimestamp", format: format) }
        return MappedEvent(
            id: DerivedID.uuid("k8s-audit:\(auditID):\(stage)"),
            user: FormatField.string(record, "user.username"),
            action: "k8s.\(verb)",
            resourceType: resource.map { resource in
                FormatField.string(record, "objectRef.subresource").map { "\(resource)/\($0)" } ?? resource
            },
            resourceID: name.map { name in namespace.map { "\($0)/\(name)" } ?? name },
            severity: code >= 500 ? "ERROR" : code >= 400 ? "WARNING" : "INFO",
            timestamp: timestamp,
            ipAddress: (record[ipAddressPath] as? [String])?.first,
            userAgent: FormatField.string(record, userAgentPath))
    }
}
