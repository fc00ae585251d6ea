import Foundation
import Synchronization

/// The one-thread contract of an `@unchecked Sendable` type whose state one thread alone may
/// use (the router's producer side, a row batch while it is filled): in debug builds `check()`
/// traps, naming the caller, when a second thread uses it; the first use claims it. Release
/// builds keep nothing and check nothing.
struct ThreadConfinement: ~Copyable, Sendable {
    #if DEBUG
    /// The claiming thread's id; 0 while unclaimed.
    private let owner = Atomic<UInt>(0)
    #endif

    init() {}

    @inline(__always)
    func check(_ caller: StaticString = #function) {
        #if DEBUG
        let current = Self.currentThread
        let (claimed, previous) = owner.compareExchange(expected: 0, desired: current, ordering: .relaxed)
        precondition(claimed || previous == current, "\(caller) was called on a second thread: this state belongs to one thread")
        #endif
    }

    #if DEBUG
    private static var currentThread: UInt {
        #if os(Linux)
        UInt(pthread_self())
        #else
        UInt(bitPattern: pthread_self())
        #endif
    }
    #endif
}
