import Foundation
import Postgres

/// Hands export chunks from the one Dispatch thread that runs the COPY to the async response
/// writer, holding at most `capacity` chunks: when the client reads slowly the COPY thread waits,
/// so memory stays flat (capacity x 64 KiB) however large the export. When it takes nothing for
/// `stallTimeout`, `send` gives up (`Stalled`): a stalled client holds no database connection.
///
/// `@unchecked Sendable`: every field is guarded by `condition`. One producer (`send`, `finish`)
/// and one consumer (`receive`, `cancel`).
final class ExportChannel: @unchecked Sendable {
    struct Cancelled: Error {}
    /// The consumer took no chunk for `stallTimeout`.
    struct Stalled: Error {}

    private let condition = NSCondition()
    private let capacity: Int
    private let stallTimeout: Duration
    private var chunks: [[UInt8]] = []
    private var finished = false
    private var failure: (any Error)?
    private var cancelled = false

    init(capacity: Int = 8, stallTimeout: Duration = .seconds(30)) {
        self.capacity = capacity
        self.stallTimeout = stallTimeout
    }

    /// Blocks while full. Throws `Cancelled` once the consumer is gone (client disconnected), and
    /// `Stalled` when it stays full for `stallTimeout` (each chunk taken restarts that wait).
    func send(_ chunk: [UInt8]) throws {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(stallTimeout.secondsDouble)
        while chunks.count >= capacity && !cancelled {
            if !condition.wait(until: deadline) && chunks.count >= capacity && !cancelled { throw Stalled() }
        }
        if cancelled { throw Cancelled() }
        chunks.append(chunk)
        condition.broadcast()
    }

    /// The end of the data, or the error that cut it short.
    func finish(_ error: (any Error)?) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next chunk (blocking), nil at the end; rethrows the producer's error.
    func receive() throws -> [UInt8]? {
        condition.lock()
        defer { condition.unlock() }
        while chunks.isEmpty && !finished { condition.wait() }
        if !chunks.isEmpty {
            condition.broadcast()
            return chunks.removeFirst()
        }
        if let failure { throw failure }
        return nil
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
