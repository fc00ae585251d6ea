import Foundation
import Postgres
import TestSupport
import Testing

/// Destinations as an operator manages them: a tenant's own, Splunk HEC, test-send, pause,
/// rewind, and secrets only by reference.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StreamManagementTests {
    @Test func aTenantsDestinationGetsOnlyThatTenantAndSplunkGetsHECEvents() throws {
        let fixture = try StreamFixture()
        try fixture.insert(tenant: StreamFixture.tenantA, count: 6)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 4)
        let hook = try Receiver.start()
        let splunk = try Receiver.start()
        defer { hook.stop(); splunk.stop() }
        _ = try fixture.createDestination(["--name", "bolt-siem", "--tenant", StreamFixture.tenantB, "--url", hook.url,
                                           "--from", "beginning"])
        _ = try fixture.createDestination(["--name", "splunk", "--kind", "splunk-hec", "--secret", "env:STREAM_TEST_HEC_TOKEN",
                                           "--url", "http://127.0.0.1:\(splunk.port)/services/collector/event", "--from", "beginning"])
        let streamer = try fixture.startStreamer(environment: ["STREAM_TEST_HEC_TOKEN": "hec-token-1"])
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }

        #expect(waitUntil(timeout: .seconds(30)) { hook.acceptedIDs().count >= 4 }, "\(streamer.outputSoFar)")
        #expect(hook.acceptedIDs() == (try fixture.feedOrder(tenant: StreamFixture.tenantB)))

        let events = { splunk.accepted().flatMap { delivery in
            delivery.body.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        } }
        #expect(waitUntil(timeout: .seconds(30)) { events().count >= 10 }, "\(streamer.outputSoFar)")
        #expect(splunk.accepted().allSatisfy { $0.headers["authorization"] == "Splunk hec-token-1" && $0.path == "/services/collector/event" })
        for event in events() {
            #expect(event["sourcetype"] as? String == "audit-ingest:event")
            // The event's own time: 2026-03-10T08:00:01Z (1773129601) to 08:00:06Z.
            #expect((event["time"] as? Double).map { (1_773_129_601...1_773_129_606).contains($0) } == true, "\(event)")
        }
        #expect(Set(events().compactMap { ($0["event"] as? [String: Any])?["id"] as? String }).count == 10)
    }

    @Test func pauseStopsDeliveryAndRewindSendsAgainWithTheSameIDs() throws {
        let fixture = try StreamFixture()
        try fixture.insert(tenant: StreamFixture.tenantA, count: 5)
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        let id = try fixture.createDestination(["--name", "hook", "--url", receiver.url, "--from", "beginning"])
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 5 }, "\(streamer.outputSoFar)")

        #expect(try fixture.cli(["stream", "destination", "pause", "hook"]).exitCode == 0)
        #expect(try fixture.destinationState(id).state == "paused")
        try fixture.insert(tenant: StreamFixture.tenantA, count: 3)
        // Rewind while paused, then resume: all 8 again, after the first 5.
        let rewound = try fixture.cli(["stream", "destination", "rewind", id, "--to", "beginning"])
        #expect(rewound.exitCode == 0, "\(rewound.output)")
        #expect(receiver.acceptedIDs().count == 5, "a paused destination is sent nothing")
        #expect(try fixture.cli(["stream", "destination", "resume", "hook"]).exitCode == 0)
        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 13 }, "\(streamer.outputSoFar)")
        let order = try fixture.feedOrder(tenant: StreamFixture.tenantA)
        #expect(receiver.acceptedIDs() == Array(order.prefix(5)) + order)

        let bad = try fixture.cli(["stream", "destination", "rewind", "hook", "--to", "yesterday"])
        #expect(bad.exitCode == 64 && bad.output.contains("--to must be beginning or an RFC 3339 time"), "\(bad.output)")
        let unknown = try fixture.cli(["stream", "destination", "pause", "nope"])
        #expect(unknown.exitCode == 2 && unknown.output.contains("no destination nope"), "\(unknown.output)")
    }

    @Test func testSendTellsWhetherTheReceiverTakesItAndSecretsAreOnlyReferences() throws {
        let fixture = try StreamFixture()
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        _ = try fixture.createDestination(["--name", "hook", "--url", receiver.url, "--secret", "file:/nonexistent/secret"])
        let unreadable = try fixture.cli(["stream", "destination", "test", "hook"])
        #expect(unreadable.exitCode == 1 && unreadable.output.contains("cannot read the file"), "\(unreadable.output)")

        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("hook-secret-\(UUID().uuidString)")
        try "s3cret-value\n".write(to: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: secretFile) }
        _ = try fixture.createDestination(["--name", "hook2", "--url", receiver.url + "?token=in-the-url", "--secret", "file:" + secretFile.path])
        let sent = try fixture.cli(["stream", "destination", "test", "hook2"])
        #expect(sent.exitCode == 0, "\(sent.output)")
        #expect(receiver.accepted().last?.headers["x-audit-ingest-test"] == "1")
        #expect(receiver.accepted().last?.headers["x-audit-ingest-signature"]?.contains("v1=") == true)
        receiver.setDown(true)
        let refused = try fixture.cli(["stream", "destination", "test", "hook2"])
        #expect(refused.exitCode == 1 && refused.output.contains("HTTP 503"), "\(refused.output)")

        let listed = try fixture.cli(["stream", "destination", "list"])
        #expect(listed.exitCode == 0)
        #expect(!listed.output.contains("in-the-url") && !listed.output.contains("s3cret-value"), "\(listed.output)")
        let inline = try fixture.cli(["stream", "destination", "create", "--name", "x", "--url", receiver.url, "--secret", "hunter2"])
        #expect(inline.exitCode == 64 && inline.output.contains("--secret takes a reference"), "\(inline.output)")
        #expect(!inline.output.contains("hunter2"), "\(inline.output)")
    }

    @Test func metricsShowEachDestinationsLagAndStateAndAlert() throws {
        let fixture = try StreamFixture()
        let receiver = try Receiver.start(down: true)
        defer { receiver.stop() }
        _ = try fixture.createDestination(["--name", "slow", "--url", receiver.url, "--from", "beginning", "--fail-after", "3600"])
        try fixture.insert(tenant: StreamFixture.tenantA, count: 7)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 5)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: "t", extraArguments: ["--alert-stream-lag", "1"])
        defer { server.stop() }
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }

        let lagging = #"audit_ingest_stream_lag_events{destination="slow",tenant="all"} 12"#
        let alert = #"audit_ingest_alert{alert="stream_lag"} 1"#
        // The lag is counted at most every 5 s; the alert needs the oldest event 1 s old.
        #expect(waitUntil(timeout: .seconds(40)) { let body = try server.request("/metrics").body; return body.contains(lagging) && body.contains(alert) },
                "\((try? server.request("/metrics").body) ?? "")")
        let metrics = try server.request("/metrics").body
        #expect(metrics.contains(#"audit_ingest_stream_destination_state{destination="slow",state="active",tenant="all"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"audit_ingest_alert{alert="stream_destination_failed"} 0"#))

        receiver.setDown(false)
        #expect(waitUntil(timeout: .seconds(40)) {
            let body = try server.request("/metrics").body
            return body.contains(#"audit_ingest_stream_lag_events{destination="slow",tenant="all"} 0"#)
                && body.contains(#"audit_ingest_alert{alert="stream_lag"} 0"#)
        }, "\((try? server.request("/metrics").body) ?? "")")
        #expect(receiver.acceptedIDs().count == 12)
    }
}
