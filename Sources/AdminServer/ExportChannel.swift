import Foundation

/// Hands export chunks from the one Dispatch thread that runs the COPY to the async response
/// writer, holding at most `capacity` chunks: when the client reads slowly the COPY thread waits,
/// so memory stays flat (capacity x 64 KiB) however large the export.
///
/// `@unchecked Sendable`: every field is guarded by `condition`. One producer (`send`, `finish`)
/// and one consumer (`receive`, `cancel`).
final class ExportChannel: @unchecked Sendable {
    struct Cancelled: Error {}

    private let condition = NSCondition()
    private let capacity: Int
    private var chunks: [[UInt8]] = []
    private var finished = false
    private var failure: (any Error)?
    private var cancelled = false

    init(capacity: Int = 8) { self.capacity = capacity }

    /// Blocks while full. Throws `Cancelled` once the consumer is gone (client disconnected).
    func send(_ chunk: [UInt8]) throws {
        condition.lock()
        defer { condition.unlock() }
        while chunks.count >= capacity && !cancelled { condition.wait() }
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
