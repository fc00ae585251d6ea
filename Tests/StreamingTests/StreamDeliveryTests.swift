import Crypto
import Foundation
import Postgres
import TestSupport
import Testing

/// `audit-ingest stream` against real local receivers: every event, in feed order per tenant,
/// signed; a receiver that is down gets everything afterwards while others go on; kill -9 loses
/// nothing.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StreamDeliveryTests {
    static let secret = "whsec-for-stream-tests"

    /// Each tenant's ids as a destination received them, in order.
    static func byTenant(_ deliveries: [Receiver.Delivery]) -> [String: [String]] {
        deliveries.reduce(into: [:]) { ids, delivery in
            ids[delivery.json?["tenant_id"] as? String ?? "", default: []] += delivery.ids
        }
    }

    @Test func aWebhookGetsEveryEventOfEveryTenantInFeedOrderSigned() throws {
        let fixture = try StreamFixture()
        try fixture.insert(tenant: StreamFixture.tenantA, count: 30)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 20)
        try fixture.insert(tenant: StreamFixture.tenantA, count: 5)
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        _ = try fixture.createDestination(["--name", "siem", "--url", receiver.url, "--secret", "env:STREAM_TEST_SECRET",
                                           "--batch-size", "7", "--from", "beginning"])
        let streamer = try fixture.startStreamer(environment: ["STREAM_TEST_SECRET": Self.secret])
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }

        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 55 }, "\(streamer.outputSoFar)")
        // Events written after the streamer started arrive too.
        try fixture.insert(tenant: StreamFixture.tenantB, count: 3)
        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 58 }, "\(streamer.outputSoFar)")

        let deliveries = receiver.accepted()
        let received = Self.byTenant(deliveries)
        #expect(received[StreamFixture.tenantA] == (try fixture.feedOrder(tenant: StreamFixture.tenantA)))
        #expect(received[StreamFixture.tenantB] == (try fixture.feedOrder(tenant: StreamFixture.tenantB)))
        #expect(deliveries.allSatisfy { $0.ids.count <= 7 && !$0.ids.isEmpty })
        for delivery in deliveries {
            let header = try #require(delivery.headers["x-audit-ingest-signature"], "\(delivery.headers)")
            let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").compactMap { part -> (String, String)? in
                let pair = part.split(separator: "=", maxSplits: 1)
                return pair.count == 2 ? (String(pair[0]), String(pair[1])) : nil
            })
            let t = try #require(parts["t"])
            let mac = HMAC<SHA256>.authenticationCode(for: Array((t + "." + delivery.body).utf8),
                                                      using: SymmetricKey(data: Array(Self.secret.utf8)))
            #expect(parts["v1"] == mac.map { String(format: "%02x", $0) }.joined(), "signature of \(delivery.body.prefix(80))")
            #expect(delivery.json?["destination"] as? String == "siem")
        }
        let listed = try fixture.cli(["stream", "destination", "list"])
        #expect(listed.output.contains(#""delivered" : 58"#) || listed.output.contains(#""delivered":58"#), "\(listed.output)")
        #expect(!listed.output.contains(Self.secret))
    }

    @Test func aDestinationThatIsDownGetsEverythingAfterwardsWhileAnotherGoesOn() throws {
        let fixture = try StreamFixture()
        let down = try Receiver.start(down: true)
        let up = try Receiver.start()
        defer { down.stop(); up.stop() }
        _ = try fixture.createDestination(["--name", "down", "--url", down.url, "--batch-size", "10", "--from", "beginning"])
        _ = try fixture.createDestination(["--name", "up", "--url", up.url, "--batch-size", "10", "--from", "beginning"])
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        for _ in 0..<5 { try fixture.insert(tenant: StreamFixture.tenantA, count: 20) }

        // The healthy destination gets everything while the other one refuses.
        #expect(waitUntil(timeout: .seconds(30)) { up.acceptedIDs().count >= 100 }, "\(streamer.outputSoFar)")
        #expect(waitUntil(timeout: .seconds(30)) { !down.refused().isEmpty })
        #expect(down.accepted().isEmpty)
        down.setDown(false)
        #expect(waitUntil(timeout: .seconds(60)) { down.acceptedIDs().count >= 100 }, "\(streamer.outputSoFar)")
        let order = try fixture.feedOrder(tenant: StreamFixture.tenantA)
        #expect(down.acceptedIDs() == order)
        #expect(up.acceptedIDs() == order)
        // Every refused batch was the first one not yet accepted: nothing was skipped past it.
        #expect(Set(down.refused().map { $0.ids.first ?? "" }) == [order[0]])
        #expect(streamer.outputSoFar.contains("delivery failed; retrying with backoff"))
    }

    @Test func aDestinationFailingPastItsLimitIsMarkedFailedAndResumesFromItsCursor() throws {
        let fixture = try StreamFixture()
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        let id = try fixture.createDestination(["--name", "flaky", "--url", receiver.url, "--batch-size", "5", "--fail-after", "1",
                                                "--from", "now"])
        try fixture.insert(tenant: StreamFixture.tenantB, count: 8)
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 8 }, "\(streamer.outputSoFar)")

        receiver.setDown(true)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 12)
        #expect(waitUntil(timeout: .seconds(30)) { (try? fixture.destinationState(id).state) == "failed" }, "\(streamer.outputSoFar)")
        let reason = try fixture.destinationState(id).reason ?? ""
        #expect(reason.contains("HTTP 503"), "\(reason)")
        #expect(streamer.outputSoFar.contains("destination marked failed"))
        receiver.setDown(false)
        #expect(receiver.acceptedIDs().count == 8, "a failed destination is sent nothing")

        let resumed = try fixture.cli(["stream", "destination", "resume", "flaky"])
        #expect(resumed.exitCode == 0, "\(resumed.output)")
        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 20 }, "\(streamer.outputSoFar)")
        #expect(receiver.acceptedIDs() == (try fixture.feedOrder(tenant: StreamFixture.tenantB)))
        #expect(try fixture.destinationState(id).state == "active")
    }

    @Test func theFailAfterClockGoesOnAcrossAStreamerRestart() throws {
        let fixture = try StreamFixture()
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        let id = try fixture.createDestination(["--name", "patient", "--url", receiver.url, "--batch-size", "5", "--fail-after", "600",
                                                "--from", "now"])
        func failingSince() throws -> String? {
            try fixture.owner.query("SELECT failing_since::text FROM stream_destination WHERE id = $1::uuid", [id]).scalar
        }
        receiver.setDown(true)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 3)
        let first = try fixture.startStreamer()
        #expect(waitUntil(timeout: .seconds(30)) { try failingSince() != nil }, "the first failure is recorded: \(first.outputSoFar)")
        first.signal(SIGKILL)
        _ = first.wait(timeout: 10)
        // As if that streamer had been failing for an hour before it stopped: the next one goes on
        // counting from there, and the 10 minutes are long past.
        try fixture.owner.query("UPDATE stream_destination SET failing_since = failing_since - interval '1 hour' WHERE id = $1::uuid", [id])
        let second = try fixture.startStreamer()
        defer { second.signal(SIGKILL); _ = second.wait(timeout: 10) }
        #expect(waitUntil(timeout: .seconds(30)) { (try? fixture.destinationState(id).state) == "failed" }, "\(second.outputSoFar)")
        let reason = try fixture.destinationState(id).reason ?? ""
        #expect(reason.hasPrefix("failing since 36"), "\(reason)")
        #expect(try failingSince() == nil, "marking it failed ends the run of failures: a resume counts afresh")

        receiver.setDown(false)
        #expect(try fixture.cli(["stream", "destination", "resume", "patient"]).exitCode == 0)
        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 3 }, "\(second.outputSoFar)")
        #expect(try failingSince() == nil)
    }

    @Test func killNineOfTheStreamerLosesNothingAndResendsOnlyTheBatchInFlight() throws {
        let fixture = try StreamFixture()
        for _ in 0..<4 { try fixture.insert(tenant: StreamFixture.tenantA, count: 500) }
        try fixture.insert(tenant: StreamFixture.tenantB, count: 300)
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        _ = try fixture.createDestination(["--name", "all", "--url", receiver.url, "--batch-size", "25", "--from", "beginning"])
        var kills = 0
        for target in [200, 700, 1400] {
            let streamer = try fixture.startStreamer()
            #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= target }, "\(streamer.outputSoFar)")
            streamer.signal(SIGKILL)
            _ = streamer.wait(timeout: 10)
            kills += 1
        }
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        let expected = try fixture.feedOrder(tenant: StreamFixture.tenantA) + fixture.feedOrder(tenant: StreamFixture.tenantB)
        #expect(waitUntil(timeout: .seconds(60)) { Set(receiver.acceptedIDs()).count == expected.count }, "\(streamer.outputSoFar)")

        let received = receiver.acceptedIDs()
        #expect(Set(received) == Set(expected))
        // At most the batch in flight at each kill (25 events) comes again, with the same ids.
        #expect(received.count - expected.count <= 25 * kills, "\(received.count - expected.count) duplicates")
        // Per tenant, the first time each id arrives follows the feed's order.
        let firstSeen = Self.byTenant(receiver.accepted()).mapValues { ids in ids.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } } }
        #expect(firstSeen[StreamFixture.tenantA] == (try fixture.feedOrder(tenant: StreamFixture.tenantA)))
        #expect(firstSeen[StreamFixture.tenantB] == (try fixture.feedOrder(tenant: StreamFixture.tenantB)))
    }

    @Test func twoStreamersSendEachBatchOnceAndInOrder() throws {
        let fixture = try StreamFixture()
        for _ in 0..<5 {
            try fixture.insert(tenant: StreamFixture.tenantA, count: 100)
            try fixture.insert(tenant: StreamFixture.tenantB, count: 60)
        }
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        _ = try fixture.createDestination(["--name", "shared", "--url", receiver.url, "--batch-size", "20", "--from", "beginning"])
        let first = try fixture.startStreamer()
        let second = try fixture.startStreamer()
        defer { for streamer in [first, second] { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) } }

        #expect(waitUntil(timeout: .seconds(60)) { receiver.acceptedIDs().count >= 800 }, "\(first.outputSoFar)\n\(second.outputSoFar)")
        let received = Self.byTenant(receiver.accepted())
        #expect(received[StreamFixture.tenantA] == (try fixture.feedOrder(tenant: StreamFixture.tenantA)))
        #expect(received[StreamFixture.tenantB] == (try fixture.feedOrder(tenant: StreamFixture.tenantB)))
        #expect(receiver.acceptedIDs().count == 800, "no batch sent twice")
    }
}
