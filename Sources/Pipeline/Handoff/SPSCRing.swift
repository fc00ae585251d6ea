import Synchronization

/// A bounded lock-free ring buffer with one producer thread and one consumer thread.
///
/// Capacity is a power of two; positions grow forever and `position & mask` picks the slot
/// (`&+` wraps after 2^63 pushes, which never happens in practice). A full ring refuses the push:
/// that is the pipeline's backpressure.
///
/// Contract: exactly one thread calls `tryPush` and exactly one (other) thread calls `tryPop`.
/// Debug builds check it.
public final class SPSCRing<Element>: @unchecked Sendable {  // slots are handed over by head/tail
    public let capacity: Int
    private let mask: Int
    /// Slot storage. Owned by the ring; slots in [head, tail) are initialised, the rest are not.
    private let slots: UnsafeMutablePointer<Element>
    /// Next position to read. Written only by the consumer.
    private let head = Atomic<Int>(0)
    /// Next position to write. Written only by the producer.
    private let tail = Atomic<Int>(0)
    #if DEBUG
    private let pushing = Atomic<Bool>(false)
    private let popping = Atomic<Bool>(false)
    #endif

    /// - Parameter capacity: a power of two ≥ 2.
    public init(capacity: Int) {
        precondition(capacity >= 2 && capacity & (capacity - 1) == 0, "ring capacity must be a power of two, got \(capacity)")
        self.capacity = capacity
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
    }

    deinit {
        var position = head.load(ordering: .relaxed)
        let end = tail.load(ordering: .relaxed)
        while position != end {
            (slots + (position & mask)).deinitialize(count: 1)
            position &+= 1
        }
        slots.deallocate()
    }

    /// Appends `element`; false when the ring is full (the element is not consumed).
    public func tryPush(_ element: consuming Element) -> Bool {
        #if DEBUG
        precondition(!pushing.exchange(true, ordering: .acquiring), "SPSCRing: two producers at once")
        defer { pushing.store(false, ordering: .releasing) }
        #endif
        let position = tail.load(ordering: .relaxed)  // only this thread writes tail
        // Acquiring pairs with the consumer's releasing store of head: the slot has been moved out.
        let consumed = head.load(ordering: .acquiring)
        guard position &- consumed < capacity else { return false }
        (slots + (position & mask)).initialize(to: element)
        // Releasing publishes the initialised slot to the consumer's acquiring load of tail.
        tail.store(position &+ 1, ordering: .releasing)
        return true
    }

    /// Removes the oldest element; nil when the ring is empty.
    public func tryPop() -> Element? {
        #if DEBUG
        precondition(!popping.exchange(true, ordering: .acquiring), "SPSCRing: two consumers at once")
        defer { popping.store(false, ordering: .releasing) }
        #endif
        let position = head.load(ordering: .relaxed)  // only this thread writes head
        // Acquiring pairs with the producer's releasing store of tail: the slot is initialised.
        guard position != tail.load(ordering: .acquiring) else { return nil }
        let element = (slots + (position & mask)).move()
        // Releasing hands the emptied slot back to the producer.
        head.store(position &+ 1, ordering: .releasing)
        return element
    }

    /// Elements in the ring right now (a snapshot; exact only when both sides are idle).
    public var count: Int {
        tail.load(ordering: .relaxed) &- head.load(ordering: .relaxed)
    }
}
