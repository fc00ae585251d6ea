import Foundation
import Kafka
import Synchronization
import Testing

/// Records what the group assigns, as the engine's handler would.
private final class AssignmentRecorder: KafkaRebalanceHandler, @unchecked Sendable {  // used on its consumer's thread
    private(set) var assigned: Set<Int32> = []
    private(set) var revocations = 0

    func partitionsAssigned(_ partitions: [Int32]) -> [Int32: Int64] {
        assigned.formUnion(partitions)
        return [:]
    }

    func partitionsRevoked(_ partitions: [Int32]) {
        assigned.subtract(partitions)
        revocations += 1
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct RevocationTests {
    /// A second member joins while the first is inside a long batch poll: librdkafka revokes the
    /// first member's partitions inside that call, after it has fetched messages of them. Those
    /// messages must not be handed out (they belong to the new owner now), and no offset of a
    /// partition may be handed out twice (after a re-assignment librdkafka fetches it again).
    @Test(arguments: ["range", "cooperative-sticky"])
    func messagesOfPartitionsRevokedDuringABatchAreNotHandedOut(strategy: String) throws {
        let cluster = try EmbeddedKafkaCluster()
        let topic = "revoke-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: 4)
        let group = "g-\(UUID().uuidString.prefix(8))"
        let configuration = KafkaConfiguration([
            "bootstrap.servers": cluster.bootstrapServers, "session.timeout.ms": "6000", "heartbeat.interval.ms": "300",
            "partition.assignment.strategy": strategy,
        ])
        let firstHandler = AssignmentRecorder()
        let first = try KafkaConsumer(configuration: configuration, group: group, topic: topic, handler: firstHandler, batchSize: 100_000)
        let joined = Date().addingTimeInterval(30)
        while firstHandler.assigned.count < 4, Date() < joined {
            try first.poll(timeoutMilliseconds: 100) { _ in Issue.record("the topic is empty yet") }
        }
        #expect(firstHandler.assigned.count == 4)

        // The second member joins on a thread of its own, polling until told to stop.
        let stop = Atomic<Bool>(false)
        let secondDone = DispatchSemaphore(value: 0)
        let secondThread = Thread {
            defer { secondDone.signal() }
            let handler = AssignmentRecorder()
            guard let second = try? KafkaConsumer(configuration: configuration, group: group, topic: topic, handler: handler) else { return }
            while !stop.load(ordering: .relaxed) { _ = try? second.poll(timeoutMilliseconds: 100, maxMessages: 1) { _ in } }
            second.close()
        }
        secondThread.start()
        let producer = try KafkaProducer(configuration: KafkaConfiguration(["bootstrap.servers": cluster.bootstrapServers]))
        for index in 0..<2000 { try producer.send(topic: topic, partition: Int32(index % 4), value: Array("m\(index)".utf8)) }
        try producer.flush()

        var delivered: [Int32: [Int64]] = [:]
        var misplaced: [String] = []
        // One long poll: it takes the messages at once and is still inside librdkafka's batch call
        // when the group rebalances for the new member.
        let until = Date().addingTimeInterval(30)
        while firstHandler.revocations == 0, Date() < until {
            try first.poll(timeoutMilliseconds: 12_000) { message in
                if !firstHandler.assigned.contains(message.partition) { misplaced.append("\(message.partition):\(message.offset)") }
                delivered[message.partition, default: []].append(message.offset)
            }
        }
        stop.store(true, ordering: .relaxed)
        secondDone.wait()
        first.close()
        #expect(firstHandler.revocations > 0, "the second member never caused a rebalance")
        #expect(misplaced.isEmpty, "handed out after their partition was revoked: \(misplaced.prefix(20))")
        for (partition, offsets) in delivered {
            #expect(Set(offsets).count == offsets.count, "partition \(partition): an offset handed out twice")
        }
    }
}
