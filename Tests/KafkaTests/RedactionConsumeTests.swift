import Foundation
import TestSupport
import Testing

/// A redaction rule set while `consume` runs takes effect within its reload (10 s), without a
/// restart, and from then on for every event; what was stored before stays as it was.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RedactionConsumeTests {
    @Test func aRuleSetWhileConsumeRunsAppliesToTheEventsThatFollowIt() throws {
        let fixture = try KafkaFixture(partitions: 2)
        func stored(withRegion: Bool) throws -> Int {
            try fixture.database.count("SELECT count(*) FROM audit_log WHERE \(withRegion ? "" : "NOT ")custom_metadata ? 'region'")
        }
        try fixture.produce(events: 200, seed: 1)
        let consumer = try fixture.startConsumer(exitWhenIdle: nil)
        #expect(try fixture.waitForStored(atLeast: 200))
        #expect(try stored(withRegion: true) == 200)

        let set = try Shell.run(Shell.executable(named: "audit-ingest"), [
            "tenant", "redaction", "set", "--all-tenants", "--field", "custom_metadata.region", "--action", "drop",
            "--database-url", fixture.database.url])
        #expect(set.exitCode == 0, "\(set.output)")
        // Produce a few events at a time until the running consumer stores one without its region.
        var seed: UInt64 = 2
        let applied = waitUntil(timeout: .seconds(40), interval: .milliseconds(200)) {
            try fixture.produce(events: 4, seed: seed)
            seed += 1
            _ = try fixture.waitForStored(atLeast: fixture.produced)
            return try stored(withRegion: false) > 0
        }
        #expect(applied, "the rule never took effect in the running consumer")
        // From then on every event goes without it, and nothing stored before changed.
        let before = try stored(withRegion: true)
        try fixture.produce(events: 300, seed: 1000)
        #expect(try fixture.waitForStored(atLeast: fixture.produced))
        #expect(try stored(withRegion: true) == before && before >= 200)
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
        consumer.signal(SIGTERM)
        #expect(consumer.wait().exitCode == 0)
    }
}
