@testable import Pipeline
import Testing

/// Every retry loop waits by one policy: exponential from 200 ms, capped at 5 s, cut short by a
/// stop. Measured on a manual clock: no test sleeps.
@Suite struct RetryPolicyTests {
    @Test func waitsGrowExponentiallyUpToTheCap() {
        let (clock, slept) = ThreadClock.manual()
        let policy = RetryPolicy(clock: clock)
        var waited: [Duration] = []
        for attempt in 1...7 {
            let before = slept()
            #expect(policy.wait(attempt: attempt, unless: StopSignal()))
            waited.append(slept() - before)
        }
        #expect(waited == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
                           .milliseconds(3200), .seconds(5), .seconds(5)])
    }

    @Test func aRaisedStopEndsTheWaitAtOnce() {
        let (clock, slept) = ThreadClock.manual()
        let stop = StopSignal()
        stop.raise()
        #expect(!RetryPolicy(clock: clock).wait(attempt: 3, unless: stop))
        #expect(slept() == .zero)
    }
}
