@testable import Pipeline
import Testing

/// When the Kafka consumer pauses fetching: only after the rings have stayed nearly full for
/// `pauseAfter`, and it resumes once they are half empty.
@Suite struct BackpressureTests {
    let start = ContinuousClock.now

    @Test func shortWaitsNeverPause() {
        var backpressure = Backpressure(pauseAfter: .seconds(2), ringCapacity: 1024)
        #expect(backpressure.update(room: 10, now: start) == .none)
        #expect(backpressure.update(room: 10, now: start + .milliseconds(1900)) == .none)
        #expect(backpressure.update(room: 900, now: start + .milliseconds(1950)) == .none)  // the flusher caught up
        #expect(backpressure.update(room: 10, now: start + .milliseconds(3000)) == .none)   // a new stall starts here
        #expect(!backpressure.isPaused)
    }

    @Test func aLongStallPausesUntilTheRingsAreHalfEmpty() {
        var backpressure = Backpressure(pauseAfter: .seconds(2), ringCapacity: 1024)
        #expect(backpressure.update(room: 0, now: start) == .none)
        #expect(backpressure.update(room: 100, now: start + .seconds(2)) == .pause)
        #expect(backpressure.isPaused)
        #expect(backpressure.update(room: 400, now: start + .seconds(3)) == .none)  // room, but not half a ring
        #expect(backpressure.update(room: 512, now: start + .seconds(4)) == .resume)
        #expect(!backpressure.isPaused)
    }

    @Test func enoughRoomIsAnEighthOfARing() {
        let backpressure = Backpressure(pauseAfter: .seconds(2), ringCapacity: 16_384)
        #expect(backpressure.minimumRoom == 2048)
    }
}
