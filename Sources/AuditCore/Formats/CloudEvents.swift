import Foundation

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
            // Length-prefixed: ("urn:svc:x", "a:b") and ("urn:svc", "x:a:b") are two events.
            id: DerivedID.uuid("cloudevents:\(source.utf8.count):\(source):\(id)"),
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

extension CloudEvents {
    /// A binary-mode message (CloudEvents Kafka protocol binding) as the structured record it
    /// stands for: each `ce_NAME` header is attribute NAME, `content-type` is `datacontenttype`,
    /// and the value is `data`: parsed when the content type is JSON (`application/json`,
    /// `...+json`, or none), else text, else `data_base64`. An empty value has no data.
    /// A `ce_` header that is not UTF-8 text, or given twice with different values, is a rejection
    /// naming it.
    static func binaryRecord(data: UnsafeRawBufferPointer, context: MessageContext) throws(Rejection) -> [String: Any] {
        var record: [String: Any] = [:]
        for name in Set(context.headers.map(\.name)) where name.hasPrefix("ce_") {
            if let value = try context.singleHeader(name) { record[String(name.dropFirst(3))] = value }
        }
        let contentType = context.header("content-type")
        if let contentType { record["datacontenttype"] = contentType }
        guard data.count > 0 else { return record }
        let bytes = Data(data)
        let mediaType = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        if mediaType == nil || mediaType == "application/json" || mediaType!.hasSuffix("+json"),
           let json = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) {
            record["data"] = json
        } else if let text = MessageContext.text(Array(data)) {
            record["data"] = text
        } else {
            record["data_base64"] = bytes.base64EncodedString()
        }
        return record
    }
}
