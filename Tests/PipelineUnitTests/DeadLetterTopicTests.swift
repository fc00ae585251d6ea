import AuditCore
import Foundation
import Kafka
@testable import Pipeline
import Testing

@Suite(.timeLimit(.minutes(2))) struct DeadLetterTopicTests {
    /// The dead-letter topic's producer runs on flusher threads: with its broker unreachable and
    /// its queue full, a publish gives up after its wait (the dead letters are in the table)
    /// instead of blocking the flusher for ever.
    @Test func aFullProducerQueueDoesNotBlockTheFlusher() throws {
        let sink = try KafkaDeadLetterTopic(topic: "dead-letters", configuration: KafkaConfiguration([
            "bootstrap.servers": "127.0.0.1:1", "queue.buffering.max.messages": "2", "log_level": "0",
        ]), maximumWait: .milliseconds(300))
        let deadLetters = (0..<50).map { offset in
            DeadLetter(partition: 0, offset: Int64(offset), next: Mark(next: Int64(offset) + 1, prefixHash: nil), tenantID: nil,
                       rawMessage: Array("not json".utf8), reason: "invalid JSON", detail: nil, sqlState: nil)
        }
        let started = ContinuousClock.now
        sink.publish(deadLetters, source: "test")
        sink.publish(deadLetters, source: "test")
        #expect(started.duration(to: .now) < .seconds(5))
    }
}

/// A dead letter's detail as stored: PostgreSQL's text holds no NUL.
@Suite struct DeadLetterDetailTests {
    @Test func nulsAreLeftOutAndEverythingElseKept() {
        #expect("unknown field \"a\u{0}b\" at 3\u{0}".withoutNULs == "unknown field \"ab\" at 3")
        #expect("tenant ü 🧾 is not registered".withoutNULs == "tenant ü 🧾 is not registered")
        #expect("\u{0}\u{0}".withoutNULs.isEmpty)
        #expect("".withoutNULs.isEmpty)
    }
}
