import Foundation
import ServiceLifecycle
import Synchronization

/// `consume` as a swift-service-lifecycle `Service`: the engine running a `KafkaSource`. The loop
/// runs on a thread of its own (it blocks in librdkafka and libpq, which must not hold one of the
/// cooperative pool's few threads). Graceful shutdown (SIGTERM/SIGINT through the
/// `ServiceGroup`) or cancellation raises the run's stop signal: the loop stops fetching,
/// commits what it holds (within `stopTimeout`), leaves the group, and `run` returns. Put it in
/// the group with `successTerminationBehavior: .gracefullyShutdownGroup`, so a run that ends by
/// itself (`exitWhenIdle`) stops the others.
public final class KafkaIngestService: Service, @unchecked Sendable {  // `source` is used by the loop thread only
    private let engine: IngestEngine
    private let source: KafkaSource
    private let stop = StopSignal()
    private let stopTimeout: Duration
    private let deadLetterSink: (any DeadLetterSink)?
    private let result = Mutex<IngestSummary?>(nil)

    /// - Parameters:
    ///   - stopTimeout: how long a stop may wait for in-flight batches to commit. Default: 10 s.
    ///   - deadLetterSink: also gets every committed dead letter (e.g. `KafkaDeadLetterTopic`).
    public init(engine: IngestEngine, source: KafkaSource, stopTimeout: Duration = .seconds(10),
                deadLetterSink: (any DeadLetterSink)? = nil) {
        self.engine = engine
        self.source = source
        self.stopTimeout = stopTimeout
        self.deadLetterSink = deadLetterSink
    }

    /// What the run did, once `run` has returned normally.
    public var summary: IngestSummary? { result.withLock { $0 } }

    public func run() async throws {
        let stop = self.stop
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                let summary = try await runOnOwnThread(named: "kafka-consumer") {
                    try self.engine.run(self.source, stop: stop, stopTimeout: self.stopTimeout,
                                        deadLetterSink: self.deadLetterSink)
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
