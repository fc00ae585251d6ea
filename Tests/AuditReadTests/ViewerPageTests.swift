import Foundation
import TestSupport
import Testing

/// The viewer tenants open (`/v1/tenants/{tenant_id}/viewer`), driven in headless Chromium by
/// Tests/Viewer/viewer_check.py: search, paging with the cursor, a filter, the detail view,
/// every export, the live tail, the keyboard, 320 px, and a wrong token. The facts it checks
/// come from the database, not from the API it drives. Screenshots are left in
/// $TMPDIR/viewer-screenshots (or $VIEWER_SCREENSHOTS) to be looked at.
@Suite(.serialized, .timeLimit(.minutes(4))) struct ViewerPageTests {
    static let checker = TestDatabase.repositoryRoot.appendingPathComponent("Tests/Viewer/viewer_check.py").path

    @Test func aTenantSearchesPagesExportsAndTailsItsEventsInTheViewer() throws {
        let fixture = try ReadFixture(prefix: "viewer")
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 130)
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 40)
        // Hostile text is shown as text: a dialog or a page error fails the check.
        try fixture.insert([.init(action: #"<img src=x onerror=alert(1)>"#, timestamp: "2026-02-01T00:00:00Z",
                                  metadata: #"{"note": "</script><script>alert(2)</script>"}"#)])
        let total = try fixture.owner.execute("SELECT count(*) FROM audit_log WHERE tenant_id = '\(ReadFixture.tenantA)'").scalar!
        let errors = try fixture.owner.execute("""
            SELECT count(*) FROM audit_log WHERE tenant_id = '\(ReadFixture.tenantA)' AND severity IN ('ERROR', 'CRITICAL')
            """).scalar!

        // What the live tail must show: three events stored while the page watches.
        let tailIDs = (0..<3).map { _ in UUID().uuidString.lowercased() }
        let tail = FileManager.default.temporaryDirectory.appendingPathComponent("viewer-tail-\(UUID()).ndjson")
        try Data(tailIDs.enumerated().map { index, id in
            #"{"id":"\#(id)","tenant_id":"\#(ReadFixture.tenantA)","action":"tail.\#(index)","severity":"INFO","timestamp":"2026-06-01T00:00:0\#(index)Z"}"#
        }.joined(separator: "\n").utf8).write(to: tail)
        let backfill = [Shell.executable(named: "audit-ingest"), "backfill", "--no-progress", "--database-url", fixture.url, tail.path]

        let server = try fixture.startServer()
        defer { server.stop() }
        let page = try server.request("/v1/tenants/\(ReadFixture.tenantA)/viewer")
        #expect(page.status == 200 && page.headers["content-security-policy"]?.contains("script-src 'sha256-") == true
                && page.headers["x-frame-options"] == "DENY" && page.headers["cache-control"] == "no-store", "\(page.headers)")
        #expect(try server.request("/v1/tenants/not-a-tenant/viewer").status == 404)

        let token = try fixture.createToken(tenant: ReadFixture.tenantA, name: "viewer")
        // What the page reads is kept by no cache, and sniffed as nothing else.
        let search = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events?limit=1", token: token)
        #expect(search.status == 200 && search.headers["cache-control"] == "no-store" && search.headers["x-content-type-options"] == "nosniff",
                "\(search.headers)")
        let screenshots = ProcessInfo.processInfo.environment["VIEWER_SCREENSHOTS"]
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("viewer-screenshots").path
        let expect = #"""
            {"total": \#(total), "page_size": 25, "filter": {"severity": "ERROR"}, "filter_count": \#(errors),
             "tail_count": 3, "tail_ids": ["\#(tailIDs.joined(separator: "\", \""))"]}
            """#
        let check = try Shell.run("/usr/bin/env", [
            "python3", Self.checker, "--url", server.base + "/v1/tenants/\(ReadFixture.tenantA)/viewer", "--screenshots", screenshots,
            "--expect", expect, "--require-csp", "--tail-command", backfill.map(Self.shellQuoted).joined(separator: " ")],
            environment: ["VIEWER_TOKEN": token])
        #expect(check.exitCode == 0, "\(check.output)")
        for name in ["wide-results", "detail", "tail", "narrow-320", "error"] {
            let shot = try Data(contentsOf: URL(fileURLWithPath: "\(screenshots)/\(name).png"))
            #expect(shot.count > 5_000 && shot.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(name).png")
        }
    }

    static func shellQuoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }
}
