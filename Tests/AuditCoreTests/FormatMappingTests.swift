import AuditCore
import Foundation
import Testing

/// Every mapping of `--format`, field by field, on the sample files in samples/formats (written
/// from the public specifications), including records without their optional parts.
@Suite struct FormatMappingTests {
    static let tenant = "0d5a7c1e-2b3f-4a6d-8e9f-0a1b2c3d4e5f"
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../samples/formats").standardized

    /// Each record of a sample as the wire-contract fields it maps to (nil: rejected, with why).
    private func mapped(_ file: String, _ format: EventFormat, tenant rule: TenantRule = .fixed(tenant))
        throws -> [(fields: [String: Any]?, rejection: Rejection?)] {
        let text = try String(contentsOf: Self.samples.appendingPathComponent(file), encoding: .utf8)
        let mapper = FormatMapper(format: format, tenant: rule)
        let decoder = EventDecoder()
        return text.split(separator: "\n").flatMap { line in
            Array(line.utf8).withUnsafeBytes { mapper.map($0) }.map { result -> ([String: Any]?, Rejection?) in
                switch result {
                case .failure(let rejection): return (nil, rejection)
                case .success(let bytes):
                    if case .failure(let rejection) = decoder.decode(bytes) { return (nil, rejection) }  // the contract still applies
                    return ((try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any], nil)
                }
            }
        }
    }

    @Test func cloudTrailDeliveryFileRecords() throws {
        let records = try mapped("cloudtrail-delivery.json", .cloudtrail)
        #expect(records.count == 3 && records.allSatisfy { $0.rejection == nil })
        let read = try #require(records[0].fields)
        #expect(read["id"] as? String == "6a2f9c1e-3b7d-4e8a-9f01-2c3d4e5f6a7b")
        #expect(read["tenant_id"] as? String == Self.tenant)
        #expect(read["action"] as? String == "s3.GetObject")
        #expect(read["resource_type"] as? String == "AWS::S3::Object")
        #expect(read["resource_id"] as? String == "arn:aws:s3:::reports/2026/q3.pdf")
        #expect(read["severity"] as? String == "INFO" && read["timestamp"] as? String == "2026-10-03T08:15:30Z")
        #expect(read["ip_address"] as? String == "203.0.113.17" && read["user_agent"] as? String == "aws-cli/2.17.0 Python/3.12")
        #expect((read["user_id"] as? String).flatMap(UUIDValue.init) != nil)
        let metadata = try #require(read["metadata"] as? [String: Any])
        #expect(metadata["source_format"] as? String == "cloudtrail")
        #expect((metadata["record"] as? [String: Any])?["recipientAccountId"] as? String == "111122223333")
        let denied = try #require(records[1].fields)
        #expect(denied["severity"] as? String == "WARNING" && denied["action"] as? String == "iam.DeleteRole")
        #expect(denied["resource_type"] as? String == "iam" && denied["resource_id"] == nil)
        // Called by a service: its "source IP" is a host name, kept only in the record.
        let service = try #require(records[2].fields)
        #expect(service["ip_address"] == nil && service["user_agent"] == nil && service["action"] as? String == "kms.Decrypt")
    }

    @Test func kubernetesAuditEvents() throws {
        let records = try mapped("k8s-audit.ndjson", .k8sAudit)
        #expect(records.allSatisfy { $0.rejection == nil })
        let create = try #require(records[0].fields)
        #expect(create["action"] as? String == "k8s.create" && create["resource_type"] as? String == "secrets")
        #expect(create["resource_id"] as? String == "payments/stripe-key" && create["severity"] as? String == "INFO")
        #expect(create["timestamp"] as? String == "2026-10-05T11:00:00.135512Z" && create["ip_address"] as? String == "10.20.30.40")
        #expect(create["user_agent"] as? String == "kubectl/v1.30.2 (linux/amd64)")
        let forbidden = try #require(records[1].fields)
        #expect(forbidden["severity"] as? String == "WARNING" && forbidden["resource_type"] as? String == "nodes/proxy")
        #expect(forbidden["resource_id"] as? String == "node-3" && forbidden["ip_address"] as? String == "2001:db8::42")
        let minimal = try #require(records[2].fields)
        #expect(minimal["timestamp"] as? String == "2026-10-05T11:03:00.000000Z" && minimal["resource_type"] == nil)
        // One request logs several stages: each is its own event, with its own stable id.
        #expect(create["id"] as? String != minimal["id"] as? String)
        #expect(try mapped("k8s-audit.ndjson", .k8sAudit)[0].fields?["id"] as? String == create["id"] as? String)
    }

    @Test func ocsfApiActivityAndAuthentication() throws {
        let records = try mapped("ocsf.ndjson", .ocsf)
        let update = try #require(records[0].fields)
        #expect(update["action"] as? String == "api.UpdateInvoice" && update["severity"] as? String == "WARNING")
        #expect(update["timestamp"] as? String == "2026-10-07T10:00:00.123Z" && update["ip_address"] as? String == "192.0.2.10")
        #expect(update["resource_type"] as? String == "invoice" && update["resource_id"] as? String == "inv-2026-0099")
        #expect(update["user_agent"] as? String == "billing-ui/4.2")
        let logon = try #require(records[1].fields)
        #expect(logon["action"] as? String == "authentication.logon" && logon["severity"] as? String == "INFO")
        #expect(logon["id"] as? String == "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a")
        #expect(records[2].rejection?.field == "class_uid")
    }

    @Test func cloudEventsStructured() throws {
        let records = try mapped("cloudevents.ndjson", .cloudevents)
        let paid = try #require(records[0].fields)
        #expect(paid["action"] as? String == "com.example.invoice.paid" && paid["resource_type"] as? String == "/billing/invoices")
        #expect(paid["resource_id"] as? String == "inv-77" && paid["severity"] as? String == "WARNING")
        #expect((paid["user_id"] as? String) != nil)
        let minimal = try #require(records[1].fields)
        #expect(minimal["timestamp"] as? String == "2026-10-07T09:31:00+02:00" && minimal["severity"] as? String == "INFO")
        #expect(minimal["user_id"] == nil && minimal["resource_id"] == nil)
        #expect(records[2].rejection?.field == "specversion")
    }

    @Test func theTenantFromAFieldMustBeAUUID() throws {
        let line = #"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2026-10-07T09:30:00Z","tenant":"\#(Self.tenant)"}"#
        let bad = #"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2026-10-07T09:30:00Z","tenant":"acme"}"#
        let mapper = FormatMapper(format: .cloudevents, tenant: try #require(TenantRule("field:tenant")))
        let good = Array(line.utf8).withUnsafeBytes { mapper.map($0) }
        let fields = try JSONSerialization.jsonObject(with: Data(try good[0].get())) as? [String: Any]
        #expect(fields?["tenant_id"] as? String == Self.tenant)
        let refused = Array(bad.utf8).withUnsafeBytes { mapper.map($0) }
        #expect(throws: Rejection.self) { try refused[0].get() }
        #expect(TenantRule("fixed:acme") == nil && TenantRule("header:") == nil && TenantRule("header:x") == .header("x"))
    }

    @Test func derivedIdsAreStable() throws {
        let once = try mapped("cloudevents.ndjson", .cloudevents)[0].fields?["id"] as? String
        let again = try mapped("cloudevents.ndjson", .cloudevents)[0].fields?["id"] as? String
        #expect(once != nil && once == again && UUIDValue(once!) != nil)
    }

    /// One line through `format`'s mapper: its first record's fields, or why it was rejected.
    private func mapLine(_ line: String, _ format: EventFormat) -> Result<[String: Any], Rejection> {
        let mapper = FormatMapper(format: format, tenant: .fixed(Self.tenant))
        return Array(line.utf8).withUnsafeBytes { mapper.map($0) }[0].map {
            (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] ?? [:]
        }
    }

    /// An OCSF `time` no date can hold (past a 64-bit integer, not finite in practice, beyond
    /// year 9999) is a rejection with the field named, never a crash of the process (one such
    /// message would stop every partition at each start).
    @Test func ocsfTimesNoDateCanHoldAreRejectedNotACrash() throws {
        func ocsf(time: String) -> String {
            #"{"class_uid":6003,"time":\#(time),"metadata":{"uid":"m-1"},"api":{"operation":"Get"}}"#
        }
        for time in ["1e30", "9223372036854775808", "-9223372036854775809", "-1e30", "1.5e308", "253402300800000", "-62135596800001"] {
            guard case .failure(let rejection) = mapLine(ocsf(time: time), .ocsf) else {
                Issue.record("time \(time) was accepted")
                continue
            }
            #expect(rejection.reason == "invalid timestamp: time", "\(time): \(rejection)")
        }
        guard case .failure(let notANumber) = mapLine(ocsf(time: #""soon""#), .ocsf) else { Issue.record("a word as time was accepted"); return }
        #expect(notANumber.reason == "invalid timestamp: time")
        #expect(try mapLine(ocsf(time: "-1"), .ocsf).get()["timestamp"] as? String == "1969-12-31T23:59:59.999Z")
        #expect(try mapLine(ocsf(time: "253402300799999"), .ocsf).get()["timestamp"] as? String == "9999-12-31T23:59:59.999Z")
    }

    /// CloudEvents are unique by `source` and `id` together: no two pairs that differ make one
    /// stored id, wherever a separator falls in them.
    @Test func cloudEventsIdsAreUniqueForEverySourceAndIdPair() throws {
        func id(source: String, id: String) throws -> String? {
            let line = #"{"specversion":"1.0","id":"\#(id)","source":"\#(source)","type":"t","time":"2026-10-07T09:30:00Z"}"#
            return try mapLine(line, .cloudevents).get()["id"] as? String
        }
        let first = try id(source: "urn:svc:x", id: "a:b"), second = try id(source: "urn:svc", id: "x:a:b")
        #expect(first != nil && second != nil && first != second)
        #expect(try id(source: "s", id: "1") == id(source: "s", id: "1"))
    }
}
