import Foundation
@testable import Pipeline
import Testing

@Suite(.timeLimit(.minutes(2))) struct SPSCRingTests {
    @Test func fillsToCapacityAndDrainsInOrder() {
        let ring = SPSCRing<Int>(capacity: 8)
        for value in 0..<8 { #expect(ring.tryPush(value)) }
        #expect(!ring.tryPush(8), "a full ring refuses the push")
        #expect(ring.count == 8)
        for value in 0..<8 { #expect(ring.tryPop() == value) }
        #expect(ring.tryPop() == nil)
    }

    @Test func wrapsAroundManyTimes() {
        let ring = SPSCRing<String>(capacity: 4)
        for round in 0..<1000 {
            #expect(ring.tryPush("a\(round)"))
            #expect(ring.tryPush("b\(round)"))
            #expect(ring.tryPop() == "a\(round)")
            #expect(ring.tryPop() == "b\(round)")
        }
    }

    @Test func releasesElementsLeftInTheRing() {
        final class Tracked { static let live = Counter(); init() { Self.live.add(1) }; deinit { Self.live.add(-1) } }
        do {
            let ring = SPSCRing<Tracked>(capacity: 4)
            _ = ring.tryPush(Tracked())
            _ = ring.tryPush(Tracked())
            _ = ring.tryPop()
        }
        #expect(Tracked.live.value == 0)
    }

    /// N producer/consumer pairs, M values each, at once, each side on a thread of its own (so
    /// a producer spinning on a full ring never waits for a consumer that is not running, even
    /// on one CPU): every consumer sees its producer's values exactly once and in order.
    @Test func stressManyPairsInParallel() {
        let pairs = 4
        let values = 300_000
        let failures = Counter()
        let totals = Counter()
        let done = DispatchGroup()
        for pair in 0..<pairs {
            let ring = SPSCRing<Int>(capacity: 1024)
            let producer = Thread {
                for value in 0..<values { while !ring.tryPush(value) { sched_yield() } }
                done.leave()
            }
            let consumer = Thread {
                var expected = 0
                var sum = 0
                while expected < values {
                    guard let value = ring.tryPop() else { sched_yield(); continue }
                    if value != expected { failures.add(1) }
                    sum += value
                    expected += 1
                }
                totals.add(sum)
                done.leave()
            }
            producer.name = "producer-\(pair)"
            consumer.name = "consumer-\(pair)"
            done.enter()
            done.enter()
            producer.start()
            consumer.start()
        }
        done.wait()
        #expect(failures.value == 0)
        #expect(totals.value == pairs * (values * (values - 1) / 2))
    }
}

final class Counter: @unchecked Sendable {  // guarded by lock
    private let lock = NSLock()
    private var total = 0
    func add(_ amount: Int) { lock.lock(); total += amount; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return total }
}
