import Foundation
import Kafka
import Pipeline
import TestSupport
import Testing

/// `consume --partitions`: static assignment without group membership, positions from PostgreSQL,
/// and fencing between processes that overlap.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StaticAssignmentTests {
    func consume(_ fixture: KafkaFixture, partitions: String) throws -> Shell.Child {
        try Shell.spawn(Shell.executable(named: "audit-ingest"),
                        fixture.consumeArguments(exitWhenIdle: 2) + ["--partitions", partitions])
    }

    @Test func staticPartitionsAreConsumedWithoutJoiningTheGroupAndResumeFromPostgres() throws {
        let fixture = try KafkaFixture(partitions: 4)
        try fixture.produce(events: 4000)
        let first = try consume(fixture, partitions: "0-1").wait()
        #expect(first.exitCode == 0, "\(first.output)")
        #expect(try fixture.database.count("SELECT count(*) FROM audit_log") == 2000)
        #expect(try fixture.database.count(#"SELECT count(DISTINCT "partition") FROM ingest_offsets"#) == 2)
        let second = try consume(fixture, partitions: "2,3").wait()
        #expect(second.exitCode == 0, "\(second.output)")
        #expect(try fixture.database.exactlyOnce(produced: 4000))
        // Everything is committed: a run over all partitions stores nothing more.
        try fixture.produce(events: 400, seed: 7)
        let third = try consume(fixture, partitions: "all").wait()
        #expect(third.exitCode == 0, "\(third.output)")
        #expect(third.output.contains("stored              400"), "\(third.output)")
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
        // Read without group membership: assigned by this process, not by the group coordinator.
        #expect(first.output.contains("assignment=partitions([0, 1])") && !first.output.contains("assignment=group"), "\(first.output)")
    }

    @Test func aPartitionThatDoesNotExistIsAClearError() throws {
        let fixture = try KafkaFixture(partitions: 2)
        let run = try consume(fixture, partitions: "1-5").wait(timeout: 60)
        #expect(run.exitCode != 0)
        #expect(run.output.contains("partition 2 does not exist"), "\(run.output)")
    }

    /// Two processes reading the same partitions at once: the flush transactions compare and set
    /// the stored positions, so for every partition and shard only one process's batch lands and
    /// the other stops (or sees its batch already stored). Nothing is stored twice, and a later
    /// run completes the rest.
    @Test func overlappingStaticConsumersAreFencedAndStoreNothingTwice() throws {
        let fixture = try KafkaFixture(partitions: 4)
        try fixture.produce(events: 8000)
        let one = try consume(fixture, partitions: "all")
        let two = try consume(fixture, partitions: "all")
        let results = [one.wait(), two.wait()]
        let output = results.map(\.output).joined(separator: "\n")
        // Each process either finished or stopped because the other owned a partition first.
        for result in results {
            #expect(result.exitCode == 0 || result.output.contains("another process committed these partitions"),
                    "\(result.output.suffix(3000))")
        }
        #expect(try fixture.database.count("SELECT count(*) FROM audit_dead_letter WHERE sqlstate = '23505'") == 0)
        let last = try consume(fixture, partitions: "all").wait()
        #expect(last.exitCode == 0, "\(last.output)")
        #expect(try fixture.database.exactlyOnce(produced: fixture.produced))
    }
}
