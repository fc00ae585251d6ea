import Foundation
import Kafka
import Synchronization
import TestSupport
import Testing

/// Completes the rebalances a consumer announces, as the engine does, and records them.
private final class AssignmentRecorder: @unchecked Sendable {  // used on its consumer's thread
    private(set) var assigned: Set<Int32> = []
    private(set) var revocations = 0

    /// Completes a pending rebalance, if any.
    func serve(_ consumer: KafkaConsumer) throws {
        switch consumer.pendingRebalance {
        case .assigned(let partitions):
            assigned.formUnion(partitions)
            try consumer.assign(startingAt: [:])
        case .revoked(let partitions), .lost(let partitions):
            assigned.subtract(partitions)
            revocations += 1
            consumer.release()
        case nil:
            break
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct RevocationTests {
    /// A second member joins while the first is inside a long batch poll: librdkafka announces the
    /// revocation inside that call, after it has fetched messages of them. The partitions stay
    /// the first member's until it releases them (`pendingRebalance` until then, no new fetch);
    /// after the release none of their messages may be handed out (they belong to the new owner),
    /// and no offset of a partition may be handed out twice (after a re-assignment librdkafka
    /// fetches it again).
    @Test(arguments: ["range", "cooperative-sticky"])
    func messagesOfPartitionsRevokedDuringABatchAreNotHandedOut(strategy: String) throws {
        TestLogging.bootstrap()
        let cluster = try EmbeddedKafkaCluster()
        let topic = "revoke-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: 4)
        let group = "g-\(UUID().uuidString.prefix(8))"
        let configuration = KafkaConfiguration([
            "bootstrap.servers": cluster.bootstrapServers, "session.timeout.ms": "6000", "heartbeat.interval.ms": "300",
            "partition.assignment.strategy": strategy,
        ])
        let firstHandler = AssignmentRecorder()
        let first = try KafkaConsumer(configuration: configuration, group: group, topic: topic, batchSize: 100_000)
        let joined = Date().addingTimeInterval(30)
        while firstHandler.assigned.count < 4, Date() < joined {
            try firstHandler.serve(first)
            try first.poll(timeoutMilliseconds: 100) { _ in Issue.record("the topic is empty yet") }
        }
        #expect(firstHandler.assigned.count == 4)

        // The second member joins on a thread of its own, polling until told to stop and until
        // it has partitions: librdkafka 2.0.2 aborts when a cooperative-sticky member that never
        // got an assignment is closed (its issue 4312, fixed in 2.3.0).
        let stop = Atomic<Bool>(false)
        let secondAssigned = Atomic<Bool>(false)
        let secondDone = DispatchSemaphore(value: 0)
        let secondThread = Thread {
            defer { secondDone.signal() }
            let handler = AssignmentRecorder()
            guard let second = try? KafkaConsumer(configuration: configuration, group: group, topic: topic) else { return }
            let giveUp = Date().addingTimeInterval(60)
            while !stop.load(ordering: .relaxed) || (handler.assigned.isEmpty && Date() < giveUp) {
                try? handler.serve(second)
                if !handler.assigned.isEmpty { secondAssigned.store(true, ordering: .relaxed) }
                _ = try? second.poll(timeoutMilliseconds: 100, maxMessages: 1) { _ in }
            }
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
        // Then a few more rounds, to catch messages librdkafka still held for released partitions.
        let until = Date().addingTimeInterval(30)
        var roundsAfterRevocation = 0
        while roundsAfterRevocation < 20 || !secondAssigned.load(ordering: .relaxed), Date() < until {
            if firstHandler.revocations > 0 { roundsAfterRevocation += 1 }
            try firstHandler.serve(first)
            try first.poll(timeoutMilliseconds: firstHandler.revocations == 0 ? 12_000 : 100) { message in
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
