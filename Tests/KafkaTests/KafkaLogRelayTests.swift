import Foundation
@testable import Kafka
import TestSupport
import Testing

/// librdkafka's log lines in swift-log: levels mapped, identical repeats folded.
@Suite struct KafkaLogRelayTests {
    static let refused = LogFolder.Line(level: 3, facility: "FAIL", client: "rdkafka#consumer-1",
                                        message: "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused")

    @Test func syslogLevelsMapToSwiftLogLevels() {
        #expect((0...3).allSatisfy { KafkaLogRelay.level(syslog: $0) == .error })
        #expect(KafkaLogRelay.level(syslog: 4) == .warning)
        #expect(KafkaLogRelay.level(syslog: 5) == .info)
        #expect(KafkaLogRelay.level(syslog: 6) == .info)
        #expect(KafkaLogRelay.level(syslog: 7) == .debug)
    }

    @Test func identicalRepeatsWithinTheWindowBecomeOneLineWithACount() {
        var folder = LogFolder(window: .seconds(5))
        let start = ContinuousClock.now
        #expect(folder.admit(Self.refused, at: start) == [.init(line: Self.refused, repeats: 0, seconds: 0)])
        for second in 1...4 { #expect(folder.admit(Self.refused, at: start + .seconds(second)).isEmpty) }
        // Another line is logged at once; the repeats wait for their window to pass.
        var other = Self.refused
        other.facility = "REQTMOUT"
        #expect(folder.admit(other, at: start + .milliseconds(4500)) == [.init(line: other, repeats: 0, seconds: 0)])
        #expect(folder.expire(at: start + .seconds(6)) == [.init(line: Self.refused, repeats: 4, seconds: 6)])
        // Still repeating: one count per window, the line itself is not logged again.
        #expect(folder.admit(Self.refused, at: start + .seconds(7)).isEmpty)
        #expect(folder.expire(at: start + .seconds(12)) == [.init(line: Self.refused, repeats: 1, seconds: 6)])
        // A window without repeats forgets the line: its next occurrence is logged in full.
        #expect(folder.expire(at: start + .seconds(18)).isEmpty)
        #expect(folder.admit(Self.refused, at: start + .seconds(19)) == [.init(line: Self.refused, repeats: 0, seconds: 0)])
    }

    @Test func aFloodOfDistinctLinesIsLoggedUnfoldedWithoutGrowingState() {
        var folder = LogFolder(window: .seconds(5))
        let start = ContinuousClock.now
        for index in 0..<(LogFolder.capacity + 50) {
            var line = Self.refused
            line.message = "line \(index)"
            #expect(folder.admit(line, at: start).count == 1)
        }
        var untracked = Self.refused
        untracked.message = "line \(LogFolder.capacity + 10)"
        #expect(folder.admit(untracked, at: start).count == 1, "past capacity, repeats are logged too")
    }

    /// Messages carry their Kafka timestamp (here the producer's create time).
    @Test func messagesCarryTheirKafkaTimestamp() throws {
        TestLogging.bootstrap()
        let cluster = try EmbeddedKafkaCluster()
        try cluster.createTopic("stamped", partitions: 1)
        let producer = try KafkaProducer(configuration: KafkaConfiguration(["bootstrap.servers": cluster.bootstrapServers]))
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        try producer.send(topic: "stamped", partition: 0, value: Array("{}".utf8))
        try producer.flush()
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        let consumer = try KafkaConsumer(configuration: KafkaConfiguration(["bootstrap.servers": cluster.bootstrapServers]),
                                         group: "stamps", topic: "stamped", assignment: .allPartitions)
        defer { consumer.close() }
        try consumer.assign(startingAt: [:])
        var stamps: [Int64?] = []
        let deadline = Date().addingTimeInterval(30)
        while stamps.isEmpty, Date() < deadline {
            try consumer.poll(timeoutMilliseconds: 100) { stamps.append($0.timestamp) }
        }
        #expect(stamps.count == 1)
        #expect(stamps.first.flatMap { $0 }.map { (before...after).contains($0) } == true, "\(stamps) not in \(before)...\(after)")
    }
}
