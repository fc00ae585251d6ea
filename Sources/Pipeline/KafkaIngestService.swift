import Foundation
import ServiceLifecycle
import Synchronization

/// `consume` as a swift-service-lifecycle `Service`. The Kafka loop runs on a thread of its own
/// (it blocks in librdkafka and libpq, which must not hold one of the cooperative pool's few
/// threads). Graceful shutdown (SIGTERM/SIGINT through the `ServiceGroup`) or cancellation
/// raises the stop signal: the loop stops fetching, flushes and commits what it holds, leaves the
/// group, and `run` returns. Put it in the group with `successTerminationBehavior:
/// .gracefullyShutdownGroup`, so a run that ends by itself (`exitWhenIdle`) stops the others.
public final class KafkaIngestService: Service, @unchecked Sendable {  // `ingest` is used by the loop thread only
    private let ingest: KafkaIngest
    private let stop: StopSignal
    private let exitWhenIdle: Duration?
    private let reportEvery: Duration
    private let result = Mutex<ConsumeSummary?>(nil)

    /// - Parameter stop: the signal `ingest` was made with.
    public init(_ ingest: KafkaIngest, stop: StopSignal, exitWhenIdle: Duration? = nil, reportEvery: Duration = .seconds(10)) {
        self.ingest = ingest
        self.stop = stop
        self.exitWhenIdle = exitWhenIdle
        self.reportEvery = reportEvery
    }

    /// What the run did, once `run` has returned normally.
    public var summary: ConsumeSummary? { result.withLock { $0 } }

    public func run() async throws {
        let stop = self.stop
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                let summary = try await runOnOwnThread(named: "kafka-consumer") {
                    try self.ingest.run(exitWhenIdle: self.exitWhenIdle, reportEvery: self.reportEvery)
                }
                result.withLock { $0 = summary }
            } onGracefulShutdown: {
                stop.raise()
            }
        } onCancel: {
            stop.raise()
        }
    }
}

/// Runs `body` on a new thread and awaits its result without blocking the cooperative pool.
func runOnOwnThread<T: Sendable>(named name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result(catching: body)) }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }
}
