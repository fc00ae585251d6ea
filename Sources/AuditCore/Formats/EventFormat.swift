import Foundation

/// The shape of incoming messages. `native` is the wire contract (DESIGN); the others are mapped
/// into it (`FormatMapper`) before the usual decoding and validation.
public enum EventFormat: String, Sendable, CaseIterable {
    case native
    /// AWS CloudTrail records, one per message, or S3 delivery files (`{"Records": [...]}`).
    case cloudtrail
    /// Kubernetes `audit.k8s.io/v1` `Event`s.
    case k8sAudit = "k8s-audit"
    /// OCSF API Activity (class 6003) and Authentication (3002) events.
    case ocsf
    /// CloudEvents 1.0 in structured JSON mode, or binary mode over Kafka (`ce_` headers).
    case cloudevents

    /// True when one message may hold many events (a CloudTrail delivery file): the limits of an
    /// event apply to each record, and the message may be larger than one event.
    public var deliversManyRecords: Bool { self == .cloudtrail }
}

/// Where a mapped event's tenant comes from.
public enum TenantRule: Sendable, Equatable {
    /// Every event belongs to this tenant.
    case fixed(String)
    /// A dot-separated path into the record (e.g. `requestParameters.tenant`); its value must be a UUID.
    case field([String])
    /// A message header (Kafka) whose value is a UUID.
    case header(String)

    /// `fixed:UUID`, `field:PATH` or `header:NAME`.
    public init?(_ text: String) {
        if text.hasPrefix("fixed:"), UUIDValue(String(text.dropFirst(6))) != nil {
            self = .fixed(String(text.dropFirst(6)).lowercased())
        } else if text.hasPrefix("field:"), text.count > 6 {
            self = .field(text.dropFirst(6).split(separator: ".").map(String.init))
        } else if text.hasPrefix("header:"), text.count > 7 {
            self = .header(String(text.dropFirst(7)))
        } else {
            return nil
        }
    }
}

/// What a mapper makes of one record: the fields of the wire contract. The whole record goes to
/// `metadata` (under `record`, beside the format's name), so nothing of it is lost.
struct MappedEvent {
    var id: String
    var user: String?
    var action: String
    var resourceType: String?
    var resourceID: String?
    var severity: String
    /// RFC 3339.
    var timestamp: String
    var ipAddress: String?
    var userAgent: String?
}

/// Turns one message of a foreign format into wire-contract JSON events (one, or several for a
/// CloudTrail delivery file), or says why it cannot.
public struct FormatMapper: Sendable {
    public let format: EventFormat
    public let tenant: TenantRule

    public init(format: EventFormat, tenant: TenantRule) {
        self.format = format
        self.tenant = tenant
    }

    /// True when mapping reads the message's context (headers): a header tenant, or CloudEvents
    /// (binary mode is told by its `ce_specversion` header).
    public var readsMessageContext: Bool {
        if case .header = tenant { return true }
        return format == .cloudevents
    }

    /// Each record of `message` as wire-contract JSON, or the reason it has none. `context`
    /// gives headers (a header tenant, CloudEvents binary mode).
    public func map(_ message: UnsafeRawBufferPointer, context: MessageContext? = nil) -> [Result<[UInt8], Rejection>] {
        if format == .cloudevents, let context, context.header("ce_specversion") != nil {
            do throws(Rejection) {
                return [mapRecord(try CloudEvents.binaryRecord(data: message, context: context), context: context)]
            } catch {
                return [.failure(error)]
            }
        }
        guard let json = try? JSONSerialization.jsonObject(with: Data(message)) else {
            return [.failure(Rejection(.invalidJSON, "not a JSON document (\(format.rawValue))"))]
        }
        guard let object = json as? [String: Any] else {
            return [.failure(Rejection(.notAnObject, "a \(format.rawValue) record is a JSON object"))]
        }
        if format == .cloudtrail, let records = object["Records"] as? [Any] {
            return records.map { record in
                guard let record = record as? [String: Any] else {
                    return .failure(Rejection(.notAnObject, "a CloudTrail record is a JSON object"))
                }
                return mapRecord(record, context: context)
            }
        }
        // `aws cloudtrail lookup-events` gives each record as a JSON string in CloudTrailEvent.
        if format == .cloudtrail, let text = object["CloudTrailEvent"] as? String {
            guard let record = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
                return [.failure(Rejection(.invalidJSON, field: "CloudTrailEvent", "CloudTrailEvent is not a JSON object"))]
            }
            return [mapRecord(record, context: context)]
        }
        return [mapRecord(object, context: context)]
    }

    private func mapRecord(_ record: [String: Any], context: MessageContext?) -> Result<[UInt8], Rejection> {
        do throws(Rejection) {
            let event: MappedEvent = switch format {
            case .native: throw Rejection(.wrongType, "native events are not mapped")
            case .cloudtrail: try CloudTrail.map(record)
            case .k8sAudit: try KubernetesAudit.map(record)
            case .ocsf: try OCSF.map(record)
            case .cloudevents: try CloudEvents.map(record)
            }
            return .success(try encode(event, record: record, tenantID: try tenantID(of: record, context: context)))
        } catch {
            return .failure(error)
        }
    }

    /// The tenant `tenant` names for `record`.
    private func tenantID(of record: [String: Any], context: MessageContext?) throws(Rejection) -> String {
        switch tenant {
        case .fixed(let id): return id
        case .field(let path):
            guard let value = FormatField.string(record, path), UUIDValue(value) != nil else {
                throw Rejection(.invalidUUID, field: "tenant_id", "\(path.joined(separator: ".")) is missing or not a UUID")
            }
            return value.lowercased()
        case .header(let name):
            guard let value = try context?.singleHeader(name), UUIDValue(value) != nil else {
                throw Rejection(.invalidUUID, field: "tenant_id", "header \(name) is missing or not a UUID")
            }
            return value.lowercased()
        }
    }

    private func encode(_ event: MappedEvent, record: [String: Any], tenantID: String) throws(Rejection) -> [UInt8] {
        var native: [String: Any] = [
            "id": event.id, "tenant_id": tenantID, "action": event.action, "severity": event.severity,
            "timestamp": event.timestamp, "metadata": ["source_format": format.rawValue, "record": record],
        ]
        native["user_id"] = event.user.map { DerivedID.uuid("\(format.rawValue):user:\($0)") }
        native["resource_type"] = event.resourceType
        native["resource_id"] = event.resourceID
        native["ip_address"] = event.ipAddress.flatMap { text in
            Array(text.utf8).withUnsafeBytes { IPAddress(parsing: $0) } == nil ? nil : text  // "AWS Internal", a host name
        }
        native["user_agent"] = event.userAgent
        guard let data = try? JSONSerialization.data(withJSONObject: native, options: [.sortedKeys]) else {
            throw Rejection(.invalidJSON, "the \(format.rawValue) record cannot be written as an event")
        }
        return Array(data)
    }
}
