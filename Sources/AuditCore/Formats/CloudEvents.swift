/// CloudEvents 1.0, structured JSON mode: `id` and `source` (unique together), `type`,
/// `subject`, `time`, `data`; the extension `severity` when present.
enum CloudEvents {
    static func map(_ record: [String: Any]) throws(Rejection) -> MappedEvent {
        let format = "CloudEvents"
        guard FormatField.string(record, "specversion") == "1.0" else {
            throw Rejection(.wrongType, field: "specversion", "CloudEvents specversion must be 1.0")
        }
        let id = try FormatField.required(record, "id", format: format)
        let source = try FormatField.required(record, "source", format: format)
        let severity = FormatField.string(record, "severity")?.uppercased()
        return MappedEvent(
            id: DerivedID.uuid("cloudevents:\(source):\(id)"),
            user: FormatField.string(record, "actor") ?? FormatField.string(record, "data.actor") ?? FormatField.string(record, "data.user"),
            action: try FormatField.required(record, "type", format: format),
            resourceType: source,
            resourceID: FormatField.string(record, "subject"),
            severity: severity.flatMap { name in Severity.allCases.contains { $0.name == name } ? name : nil } ?? "INFO",
            timestamp: try FormatField.required(record, "time", format: format),
            ipAddress: nil,
            userAgent: nil)
    }
}
