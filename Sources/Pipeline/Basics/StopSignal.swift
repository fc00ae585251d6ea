import Synchronization

/// A flag any thread may raise and all threads poll: "stop working". Shared by reference.
package final class StopSignal: Sendable {
    private let raised = Atomic<Bool>(false)

    package init() {}

    package func raise() { raised.store(true, ordering: .relaxed) }

    /// Relaxed: a stop is noticed within a loop iteration or two; no data is published through it.
    package var isRaised: Bool { raised.load(ordering: .relaxed) }
}
