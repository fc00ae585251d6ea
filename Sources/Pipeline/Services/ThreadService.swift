import Foundation
import ServiceLifecycle
import Synchronization

/// A blocking job as a swift-service-lifecycle `Service`: an ingest run or the metrics rollup.
/// `body` runs on a thread of its own (it blocks in librdkafka and libpq, which must not hold
/// one of the cooperative pool's few threads) and gets the stop signal that graceful shutdown
/// (SIGTERM/SIGINT through the `ServiceGroup`) or cancellation raises. What it returns is
/// `output` once `run` has returned; what it throws, `run` throws.
///
/// Put a job that ends by itself (a backfill, a consume with `exitWhenIdle`) in the group with
/// `successTerminationBehavior: .gracefullyShutdownGroup`, so the others stop with it.
package final class ThreadService<Output: Sendable>: Service, @unchecked Sendable {  // `body` runs once, on its thread
    private let name: String
    private let body: (StopSignal) throws -> Output
    private let stop = StopSignal()
    private let result = Mutex<Output?>(nil)

    /// - Parameter name: the thread's name (in `top -H`, backtraces and the watchdog's dumps).
    package init(named name: String, _ body: @escaping (StopSignal) throws -> Output) {
        self.name = name
        self.body = body
    }

    /// What `body` returned, once `run` has returned normally.
    package var output: Output? { result.withLock { $0 } }

    package func run() async throws {
        let stop = self.stop
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                let output = try await onOwnThread { try self.body(stop) }
                result.withLock { $0 = output }
            } onGracefulShutdown: {
                stop.raise()
            }
        } onCancel: {
            stop.raise()
        }
    }

    /// Runs `job` on a new thread and awaits its result without blocking the cooperative pool.
    private func onOwnThread(_ job: @escaping @Sendable () throws -> Output) async throws -> Output {
        let name = self.name
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result(catching: job)) }
            thread.name = name
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
