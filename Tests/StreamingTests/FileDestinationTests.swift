import Foundation
import Postgres
import TestSupport
import Testing

/// NDJSON file destinations: every event once per whole line, in feed order per tenant, in
/// segments finished by size and by age, and never a torn line after a crash.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FileDestinationTests {
    /// A fresh directory, and what is in it.
    struct Directory {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("file-destination-\(UUID().uuidString)").path
        var url: String { "file://" + path }

        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

        func names(suffix: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
        }

        func text(_ name: String) -> String { (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? "" }

        /// The events of the finished files, in file-name order, then of the open segment.
        func events(includingOpen: Bool = true) -> [[String: Any]] {
            let names = self.names(suffix: ".ndjson") + (includingOpen ? self.names(suffix: ".ndjson.part") : [])
            return names.flatMap { text($0).split(separator: "\n", omittingEmptySubsequences: false).dropLast() }
                .map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? ["torn": String($0)] }
        }

        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    @Test func everyEventLandsOnceInWholeLinesAndSegmentsFinishBySize() throws {
        let fixture = try StreamFixture()
        let directory = try Directory()
        defer { directory.remove() }
        try fixture.insert(tenant: StreamFixture.tenantA, count: 150)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 100)
        try fixture.insert(tenant: StreamFixture.tenantA, count: 50)
        _ = try fixture.createDestination(["--name", "siem-drop", "--kind", "file", "--url", directory.url, "--from", "beginning",
                                           "--batch-size", "40", "--rotate-bytes", "8192", "--rotate-seconds", "3600"])
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }

        #expect(waitUntil(timeout: .seconds(30)) { directory.events().count >= 300 }, "\(streamer.outputSoFar)")
        let events = directory.events()
        #expect(events.count == 300 && events.allSatisfy { $0["id"] is String }, "whole lines only")
        for tenant in [StreamFixture.tenantA, StreamFixture.tenantB] {
            let ids = events.filter { $0["tenant_id"] as? String == tenant }.compactMap { $0["id"] as? String }
            #expect(ids == (try fixture.feedOrder(tenant: tenant)), "tenant \(tenant) in feed order, once each")
        }
        let finished = directory.names(suffix: ".ndjson")
        #expect(finished.count >= 3, "\(finished)")
        for name in finished {
            #expect(name.hasPrefix("siem-drop-") && name.range(of: #"^siem-drop-\d{8}T\d{6}\.\d{6}Z(-\d+)?\.ndjson$"#, options: .regularExpression) != nil,
                    "\(name)")
            // A segment is finished by the batch that takes it to 8192 bytes or more: under 8192 + one batch.
            let size = directory.text(name).utf8.count
            #expect(size >= 8192 && size < 8192 + 40 * 1024, "\(name): \(size) bytes")
        }
        #expect(directory.names(suffix: ".ndjson.part").count <= 1)
    }

    @Test func anIdleSegmentIsFinishedByAgeAndATornLineIsCutOff() throws {
        let fixture = try StreamFixture()
        let directory = try Directory()
        defer { directory.remove() }
        // A previous run crashed in the middle of a write: a whole event, then half of one.
        let start = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let left = directory.path + "/drop.\(start).ndjson.part"
        try (#"{"id":"00000000-0000-4000-8000-000000000001","tenant_id":"x"}"# + "\n" + #"{"id":"00000000-00"#)
            .write(toFile: left, atomically: false, encoding: .utf8)
        try fixture.insert(tenant: StreamFixture.tenantA, count: 5)
        _ = try fixture.createDestination(["--name", "drop", "--kind", "file", "--url", directory.url, "--from", "beginning",
                                           "--rotate-seconds", "1"])
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }

        #expect(waitUntil(timeout: .seconds(30)) { directory.events(includingOpen: false).count >= 6 && directory.names(suffix: ".part").isEmpty },
                "\(streamer.outputSoFar) \(directory.names(suffix: ""))")
        let events = directory.events()
        #expect(events.allSatisfy { $0["torn"] == nil }, "\(events)")
        #expect(events.compactMap { $0["id"] as? String } == ["00000000-0000-4000-8000-000000000001"]
                + (try fixture.feedOrder(tenant: StreamFixture.tenantA)))
        #expect(directory.names(suffix: ".ndjson").count == 1)

        // Later events go to a new segment, finished by age too.
        try fixture.insert(tenant: StreamFixture.tenantA, count: 2)
        #expect(waitUntil(timeout: .seconds(30)) { directory.events(includingOpen: false).count >= 8 && directory.names(suffix: ".part").isEmpty },
                "\(streamer.outputSoFar)")
        #expect(directory.names(suffix: ".ndjson").count == 2)
    }

    @Test func killNineWhileWritingLosesNothingAndRepeatsAtMostTheBatchInFlight() throws {
        let fixture = try StreamFixture()
        let directory = try Directory()
        defer { directory.remove() }
        for _ in 0..<10 { try fixture.insert(tenant: StreamFixture.tenantA, count: 200) }
        _ = try fixture.createDestination(["--name", "drop", "--kind", "file", "--url", directory.url, "--from", "beginning",
                                           "--batch-size", "50", "--rotate-bytes", "16384"])
        let kills = 3
        for round in 1...kills {
            let streamer = try fixture.startStreamer()
            let before = directory.events().count
            // Killed while it writes: once it has written some more, at whatever point it is then.
            #expect(waitUntil(timeout: .seconds(30), interval: .milliseconds(5)) { directory.events().count >= before + 300 },
                    "round \(round): \(streamer.outputSoFar)")
            streamer.signal(SIGKILL)
            _ = streamer.wait(timeout: 10)
        }
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        let order = try fixture.feedOrder(tenant: StreamFixture.tenantA)
        #expect(waitUntil(timeout: .seconds(60)) { Set(directory.events().compactMap { $0["id"] as? String }).count == order.count },
                "\(streamer.outputSoFar)")
        let events = directory.events()
        #expect(events.allSatisfy { $0["torn"] == nil }, "no partial line")
        let ids = events.compactMap { $0["id"] as? String }
        #expect(ids.count - order.count <= kills * 50, "at most one batch again per kill: \(ids.count - order.count) repeated")
        var seen = Set<String>()
        #expect(ids.filter { seen.insert($0).inserted } == order, "every event, first seen in feed order")
    }

    @Test func aDirectoryTheStreamerCannotWriteFailsLoudlyAndTestSaysSo() throws {
        let fixture = try StreamFixture()
        let missing = "file:///nonexistent/audit-\(UUID().uuidString)"
        let created = try fixture.cli(["stream", "destination", "create", "--name", "nowhere", "--kind", "file", "--url", missing])
        #expect(created.exitCode == 0 && created.output.contains("is not a directory this user may write"), "\(created.output)")
        let test = try fixture.cli(["stream", "destination", "test", "nowhere"])
        #expect(test.exitCode == 1 && test.output.contains("cannot write in /nonexistent/"), "\(test.output)")
        let bad = try fixture.cli(["stream", "destination", "create", "--name", "x", "--kind", "file", "--url", "/var/tmp"])
        #expect(bad.exitCode == 64 && bad.output.contains("file:///DIRECTORY"), "\(bad.output)")

        try fixture.insert(tenant: StreamFixture.tenantA, count: 1)
        try fixture.owner.execute("UPDATE stream_destination SET start_xid = NULL")
        let streamer = try fixture.startStreamer()
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        #expect(waitUntil(timeout: .seconds(30)) { streamer.outputSoFar.contains("cannot read the directory /nonexistent/") }, "\(streamer.outputSoFar)")
    }
}
