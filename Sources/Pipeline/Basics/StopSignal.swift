import Synchronization

/// A flag any thread may raise and all threads poll: "stop working". Shared by reference.
public final class StopSignal: Sendable {
    private let raised = Atomic<Bool>(false)

    public init() {}

    public func raise() { raised.store(true, ordering: .relaxed) }

    /// Relaxed: a stop is noticed within a loop iteration or two; no data is published through it.
    public var isRaised: Bool { raised.load(ordering: .relaxed) }
}
