@testable import Pipeline
import Testing

/// Lag in seconds per partition from Kafka message timestamps (milliseconds since the epoch).
@Suite struct PartitionLagTimesTests {
    @Test func caughtUpIsZeroBehindIsTheAgeOfTheLastMessageRead() {
        var times = PartitionLagTimes()
        times.read(partition: 0, timestamp: 1_000_000)
        times.read(partition: 1, timestamp: 1_000_000)
        let seconds = times.seconds(lag: [0: 0, 1: 250, 2: 10], now: 1_042_500)
        #expect(seconds[0] == 0)
        #expect(seconds[1] == 42.5)
        #expect(seconds[2] == nil, "nothing read yet from partition 2: no figure rather than a guess")
    }

    @Test func anIdlePartitionsFirstNewMessageDoesNotCountTheIdleTime() {
        var times = PartitionLagTimes()
        times.read(partition: 0, timestamp: 0)
        #expect(times.seconds(lag: [0: 0], now: 3_600_000) == [0: 0])  // caught up an hour later
        #expect(times.seconds(lag: [0: 1], now: 3_601_000) == [0: 1])  // a new message: 1 s, not an hour
    }

    @Test func aProducerClockAheadGivesZeroAndRevokedPartitionsAreForgotten() {
        var times = PartitionLagTimes()
        times.read(partition: 3, timestamp: 2_000)
        #expect(times.seconds(lag: [3: 5], now: 1_000) == [3: 0])
        times.forget([3])
        #expect(times.seconds(lag: [3: 5], now: 1_000).isEmpty)
    }
}
