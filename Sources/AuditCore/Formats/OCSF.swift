/// OCSF events of class API Activity (6003) and Authentication (3002): `metadata.uid`, `time`
/// (epoch milliseconds), `actor.user`, `api.operation`, `src_endpoint`, `severity_id`.
enum OCSF {
    /// Where the event's address and user agent are read from (`EventFormat.sourcePaths`).
    static let ipAddressPath = "src_endpoint.ip"
    static let userAgentPath = "http_request.user_agent"

    static func map(_ record: [String: Any]) throws(Rejection) -> MappedEvent {
        let format = "OCSF"
        guard let classID = FormatField.int(record, "class_uid"), classID == 6003 || classID == 3002 else {
            throw Rejection(.wrongType, field: "class_uid", "OCSF class_uid must be 6003 (API Activity) or 3002 (Authentication)")
        }
        let time = try FormatField.epochMilliseconds(record, "time", format: format)
        let uid = try FormatField.required(record, "metadata.uid", format: format)
        let action: String
        if classID == 6003 {
            action = "api." + (try FormatField.required(record, "api.operation", format: format))
        } else {
            let activity = FormatField.string(record, "activity_name")?.lowercased() ?? "activity-\(FormatField.int(record, "activity_id") ?? 0)"
            action = "authentication.\(activity)"
        }
        let resource = (record["resources"] as? [[String: Any]])?.first
        return MappedEvent(
            id: DerivedID.uuid(orDerivedFrom: uid, format: "ocsf"),
            user: FormatField.string(record, "actor.user.uid") ?? FormatField.string(record, "actor.user.name")
                ?? FormatField.string(record, "user.uid") ?? FormatField.string(record, "user.name"),
            action: action,
            resourceType: resource.flatMap { FormatField.string($0, "type") } ?? FormatField.string(record, "api.service.name"),
            resourceID: resource.flatMap { FormatField.string($0, "uid") ?? FormatField.string($0, "name") },
            severity: severity(FormatField.int(record, "severity_id") ?? 1),
            timestamp: FormatField.rfc3339(milliseconds: time),
            ipAddress: FormatField.string(record, ipAddressPath),
            userAgent: FormatField.string(record, userAgentPath))
    }

    /// OCSF severity_id: 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal, 99 Other.
    static func severity(_ id: Int) -> String {
        switch id {
        case 3: "WARNING"
        case 4: "ERROR"
        case 5, 6: "CRITICAL"
        default: "INFO"
        }
    }
}
