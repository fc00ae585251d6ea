import AuditCore
import Foundation
import Testing

/// What consume keeps of a Kafka message's context, and the formats that read it: W3C
/// traceparent validation, merging into an event's metadata object, CloudEvents binary mode and
/// the tenant from a header.
@Suite struct MessageContextTests {
    static let tenant = "0d5a7c1e-2b3f-4a6d-8e9f-0a1b2c3d4e5f"
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    func context(_ headers: [(String, String?)], key: String? = nil) -> MessageContext {
        MessageContext(topic: "audit", partition: 3, offset: 42, timestamp: 1_700_000_000_000, key: key.map { Array($0.utf8) },
                       headers: headers.map { MessageContext.Header(name: $0.0, value: $0.1.map { Array($0.utf8) }) })
    }

    @Test func traceparentFollowsTheW3CFormat() {
        #expect(TraceParent.isValid(Self.traceparent))
        #expect(TraceParent.isValid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"))
        for invalid in [
            "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      // upper case
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // version ff
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // zero parent id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",    // version 00 is exactly 55
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            #expect(!TraceParent.isValid(invalid), "\(invalid)")
        }
    }

    @Test func membersAreMergedIntoTheMetadataObjectWhateverItHolds() throws {
        let members = Array(#""traceparent":"t""#.utf8)
        func merged(_ object: String?) throws -> [String: Any] {
            let bytes = object.map { Array($0.utf8) }
            let result = bytes.map { $0.withUnsafeBytes { MetadataMerge.merge($0, adding: members) } }
                ?? MetadataMerge.merge(nil, adding: members)
            return try #require(try JSONSerialization.jsonObject(with: Data(result)) as? [String: Any])
        }
        #expect(try merged(nil) as NSDictionary == ["traceparent": "t"])
        #expect(try merged("{}") as NSDictionary == ["traceparent": "t"])
        #expect(try merged(" { \n } ") as NSDictionary == ["traceparent": "t"])
        #expect(try merged(#"{"a": {"b": [1, "}"]}}"#) as NSDictionary == ["a": ["b": [1, "}"]], "traceparent": "t"])
    }

    @Test func kafkaMetadataHoldsThePositionKeyAndHeaders() throws {
        let context = context([("traceparent", Self.traceparent), ("x-empty", nil), ("x-app", "billing")], key: "user-7")
        let kept = try #require(context.metadataMembers(ContextMetadata(kafka: true, traceparent: true)))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(MetadataMerge.merge(nil, adding: kept))) as? [String: Any])
        #expect(object["traceparent"] as? String == Self.traceparent)
        let kafka = try #require(object["kafka"] as? [String: Any])
        #expect(kafka["topic"] as? String == "audit" && kafka["partition"] as? Int == 3 && kafka["offset"] as? Int == 42)
        #expect(kafka["timestamp"] as? Int == 1_700_000_000_000 && kafka["key"] as? String == "user-7")
        let headers = try #require(kafka["headers"] as? [String: Any])
        #expect(headers["x-app"] as? String == "billing" && headers["x-empty"] is NSNull)
        // Nothing asked, nothing kept; an invalid traceparent is not kept.
        #expect(context.metadataMembers(ContextMetadata()) == nil)
        #expect(self.context([("traceparent", "00-zz")]).metadataMembers(ContextMetadata(traceparent: true)) == nil)
    }

    @Test func cloudEventsBinaryModeIsMappedFromHeadersWithTheTenantFromAHeader() throws {
        let mapper = FormatMapper(format: .cloudevents, tenant: .header("x-tenant"))
        let headers: [(String, String?)] = [
            ("ce_specversion", "1.0"), ("ce_id", "evt-1"), ("ce_source", "/billing"), ("ce_type", "invoice.paid"),
            ("ce_subject", "invoice/9"), ("ce_time", "2026-11-01T10:00:00Z"), ("ce_severity", "warning"),
            ("content-type", "application/json"), ("x-tenant", Self.tenant.uppercased()),
        ]
        let value = Array(#"{"actor": "alice", "amount": 12}"#.utf8)
        let results = value.withUnsafeBytes { mapper.map($0, context: context(headers)) }
        guard case .success(let bytes) = try #require(results.first) else { Issue.record("\(results)"); return }
        let event = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(event["tenant_id"] as? String == Self.tenant)
        #expect(event["action"] as? String == "invoice.paid" && event["resource_type"] as? String == "/billing")
        #expect(event["resource_id"] as? String == "invoice/9" && event["severity"] as? String == "WARNING")
        #expect(event["timestamp"] as? String == "2026-11-01T10:00:00Z" && event["user_id"] is String)
        let record = try #require((event["metadata"] as? [String: Any])?["record"] as? [String: Any])
        #expect((record["data"] as? [String: Any])?["amount"] as? Int == 12 && record["datacontenttype"] as? String == "application/json")

        // Without the tenant header, or with one that is not a UUID: rejected, saying which header.
        for tenantHeader in [nil, "acme"] as [String?] {
            let context = context(headers.filter { $0.0 != "x-tenant" } + (tenantHeader.map { [("x-tenant", $0)] } ?? []))
            let rejected = value.withUnsafeBytes { mapper.map($0, context: context) }
            guard case .failure(let rejection) = try #require(rejected.first) else { Issue.record("\(rejected)"); continue }
            #expect(rejection.reason == "invalid uuid: tenant_id" && rejection.detail == "header x-tenant is missing or not a UUID")
        }
    }

    /// A header the mapping reads must say one thing: a `ce_` attribute that is not UTF-8 is
    /// rejected naming it (not `missing field`), and a tenant header given twice with different
    /// values is rejected rather than silently taking the last.
    @Test func headersThatSayNothingOrTwoThingsAreRejectedByName() throws {
        let mapper = FormatMapper(format: .cloudevents, tenant: .header("x-tenant"))
        let base: [MessageContext.Header] = [
            .init(name: "ce_specversion", value: Array("1.0".utf8)), .init(name: "ce_source", value: Array("/billing".utf8)),
            .init(name: "ce_type", value: Array("invoice.paid".utf8)), .init(name: "ce_time", value: Array("2026-11-01T10:00:00Z".utf8)),
        ]
        func rejection(_ headers: [MessageContext.Header]) -> Rejection? {
            let context = MessageContext(topic: "audit", partition: 0, offset: 1, timestamp: nil, key: nil, headers: base + headers)
            let results = Array("{}".utf8).withUnsafeBytes { mapper.map($0, context: context) }
            if case .failure(let rejection) = results.first { return rejection }
            return nil
        }
        let tenant = MessageContext.Header(name: "x-tenant", value: Array(Self.tenant.utf8))
        #expect(rejection([.init(name: "ce_id", value: [0x65, 0xFF, 0xFE]), tenant])?.reason == "invalid UTF-8: ce_id")
        let other = MessageContext.Header(name: "x-tenant", value: Array("6d5a7c1e-2b3f-4a6d-8e9f-0a1b2c3d4e5f".utf8))
        let twice = rejection([.init(name: "ce_id", value: Array("e-1".utf8)), tenant, other])
        #expect(twice?.reason == "duplicate field: x-tenant", "\(String(describing: twice))")
        #expect(rejection([.init(name: "ce_id", value: Array("e-1".utf8)), tenant, tenant]) == nil, "the same value twice says one thing")
    }
}
