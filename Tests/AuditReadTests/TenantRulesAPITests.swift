import Foundation
import TestSupport
import Testing

/// `GET /v1/tenants/{id}/rules`: a tenant sees the rules its own events are kept under (its
/// retention, its holds in place, the redaction rules that apply to it) and nothing of another
/// tenant's, nor a hold's reason.
@Suite(.serialized, .timeLimit(.minutes(2))) struct TenantRulesAPITests {
    @Test func aTenantSeesItsOwnRetentionHoldsAndRedactionAndNoOtherTenantsRules() throws {
        let fixture = try ReadFixture(prefix: "rules")
        let (a, b) = (ReadFixture.tenantA, ReadFixture.tenantB)
        try fixture.owner.execute("""
            INSERT INTO tenant_retention (tenant_id, days) VALUES ('\(a)', 30), ('\(b)', 400);
            INSERT INTO tenant_legal_hold (tenant_id, reason, events_from) VALUES ('\(a)', 'matter 2026-114 (sealed)', '2026-03-01Z');
            INSERT INTO tenant_legal_hold (tenant_id, reason, released_at, released_by) VALUES ('\(a)', 'old matter', now(), 'counsel');
            INSERT INTO tenant_legal_hold (tenant_id, reason) VALUES ('\(b)', 'matter of b');
            INSERT INTO redaction_rule (tenant_id, field, action) VALUES (NULL, 'custom_metadata.password', 'drop'),
                (NULL, 'ip_address', 'drop'), ('\(a)', 'ip_address', 'mask'), ('\(b)', 'user_agent', 'mask');
            """)
        let server = try fixture.startServer()
        defer { server.stop() }
        let tokenA = try fixture.createToken(tenant: a), tokenC = try fixture.createToken(tenant: ReadFixture.tenantC)

        let mine = try server.request("/v1/tenants/\(a)/rules", token: tokenA)
        #expect(mine.status == 200, "\(mine.body)")
        let rules = try #require(mine.json)
        #expect((rules["retention"] as? [String: Any])?["days"] as? Int == 30)
        let holds = try #require(rules["legal_holds"] as? [[String: Any]])
        #expect(holds.count == 1 && (holds[0]["events_from"] as? String)?.hasPrefix("2026-03-01T00:00:00") == true
                && holds[0]["events_until"] == nil, "\(holds)")
        let redaction = try #require(rules["redaction"] as? [[String: Any]]).map { "\($0["field"]!) \($0["action"]!) \($0["scope"]!)" }
        #expect(redaction.sorted() == ["custom_metadata.password drop all_tenants", "ip_address mask tenant"], "\(redaction)")
        #expect(!mine.body.contains("matter") && !mine.body.contains("counsel") && !mine.body.contains("\"days\":400"), "\(mine.body)")

        // A tenant without rules of its own sees the global ones only; another tenant's path is refused.
        let plain = try server.request("/v1/tenants/\(ReadFixture.tenantC)/rules", token: tokenC)
        #expect(plain.status == 200 && plain.json?["retention"] is NSNull && (plain.json?["legal_holds"] as? [Any])?.isEmpty == true, "\(plain.body)")
        #expect((plain.json?["redaction"] as? [Any])?.count == 2, "\(plain.body)")
        #expect(try server.request("/v1/tenants/\(a)/rules", token: tokenC).status == 403)
        #expect(try server.request("/v1/tenants/\(a)/rules?x=1", token: tokenA).status == 400)
    }
}
