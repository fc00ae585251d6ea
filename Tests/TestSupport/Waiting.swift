import Foundation
import SampleData

/// Polls `condition` until it holds or `timeout` passes, and says whether it held: the one way
/// tests wait for something another thread or process does. It checks at once, then every
/// `interval` (doubling from 1 ms up to it), so a condition that holds soon is seen soon and a
/// slow one costs little. Time is the monotonic clock's, which `faketime` leaves alone.
/// A condition that throws counts as not holding yet (a server that is not up yet refuses).
@discardableResult
public func waitUntil(timeout: Duration = .seconds(60), interval: Duration = .milliseconds(50),
                      _ condition: () throws -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var pause = Duration.milliseconds(1)
    while true {
        if (try? condition()) == true { return true }
        if clock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18 + Double(pause.components.seconds))
        pause = min(pause * 2, interval)
    }
}

/// A seeded random pause of up to `maximum`, for faults injected "at a random moment" (a kill
/// while a run is busy): the moment varies with the seed, and a failing seed can be replayed.
public func randomPause(upTo maximum: Duration, using generator: inout some RandomNumberGenerator) {
    let microseconds = Int64(maximum.components.seconds) * 1_000_000 + maximum.components.attoseconds / 1_000_000_000_000
    Thread.sleep(forTimeInterval: Double(Int64.random(in: 0...microseconds, using: &generator)) / 1e6)
}

/// A seeded generator for a test's random choices (the kill moment, ...): they repeat with the
/// seed, so a failure can be replayed.
public typealias SeededGenerator = SplitMix64
