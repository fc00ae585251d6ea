import AsyncHTTPClient
import AuditRead
import Dispatch
import Foundation
import Logging
import Postgres
import Synchronization

/// Delivers one destination's events until it is paused, failed, deleted or the task cancelled.
///
/// Rounds go through the tenants with pending events, one page each (so one tenant's backlog
/// does not hold back the others'), and repeat while any page was full. One batch is in flight at
/// a time, also across streamers (`StreamDestinations.beginDelivery`): a crash sends at most that
/// batch again. A failure is retried with exponential
/// backoff (1 s doubling to 60 s); once deliveries have failed for the destination's
/// `failAfter`, it is marked `failed`, loudly, with its cursors kept.
final class DestinationWorker: Sendable {
    let destinationID: String
    private let database: PostgresConfiguration
    private let client: HTTPClient
    private let pollInterval: Duration
    private let secrets: Streamer.Secrets
    private let logger: Logger

    init(destinationID: String, database: PostgresConfiguration, client: HTTPClient, pollInterval: Duration,
         secrets: Streamer.Secrets, logger: Logger) {
        self.destinationID = destinationID
        self.database = database
        self.client = client
        self.pollInterval = pollInterval
        self.secrets = secrets
        self.logger = logger
    }

    func run() async {
        let session = DatabaseSession(configuration: database)
        var failing = false
        var backoff = Duration.seconds(1)
        var lastFailure = ""
        while !Task.isCancelled {
            do {
                guard let destination = try await session.run({ try StreamDestinations.find(self.destinationID, on: $0) }),
                      destination.state == .active else { return }
                do {
                    let delivered = try await round(destination, session: session)
                    if failing || destination.failingSince != nil {
                        // Also a failure an earlier streamer left: its clock stops here.
                        try await session.run { try StreamDestinations.noteSuccess(id: self.destinationID, on: $0) }
                        logger.notice("destination delivers again", metadata: ["destination": "\(destination.name)"])
                    }
                    failing = false
                    backoff = .seconds(1)
                    if delivered == 0 {
                        if destination.kind == .file { try await offloaded { try self.segments(of: destination).finishIfDue() } }
                        try await Task.sleep(for: pollInterval)
                    }
                } catch let failure as DeliveryFailed {
                    failing = true
                    // Counted from the first failure as the database holds it: a restart does not reset it.
                    let elapsed = try await session.run { try StreamDestinations.noteFailure(id: self.destinationID, on: $0) }
                    if elapsed >= destination.failAfter {
                        let reason = "failing since \(Int(elapsed.secondsDouble)) s: \(failure)"
                        try await session.run { try StreamDestinations.setState(.failed, reason: reason, id: self.destinationID, on: $0) }
                        logger.error("""
                            destination marked failed: nothing more is sent to it, its cursors are kept; \
                            `audit-ingest stream destination resume` sends from where it stopped
                            """, metadata: ["destination": "\(destination.name)", "error": "\(failure)"])
                        return
                    }
                    if failure.description != lastFailure {
                        logger.warning("delivery failed; retrying with backoff", metadata: [
                            "destination": "\(destination.name)", "error": "\(failure)", "retry_in_s": "\(backoff.components.seconds)"])
                        lastFailure = failure.description
                    }
                    try await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(60))
                }
            } catch is CancellationError {
                return
            } catch {
                // The database: the session reconnects at its next use.
                logger.warning("stream destination: database error; retrying", metadata: [
                    "destination": "\(destinationID)", "error": "\(error)"])
                session.reset()
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(60))
            }
        }
    }

    /// A file destination's segments (made at the first use: the destination's settings do not change).
    private let files = Mutex<FileSegments?>(nil)

    private func segments(of destination: StreamDestination) throws(FileSegments.Failed) -> FileSegments {
        if let open = files.withLock({ $0 }) { return open }
        let made = try FileSegments(url: destination.url, name: destination.name, rotateBytes: destination.rotateBytes ?? 64 << 20,
                                    rotateSeconds: destination.rotateSeconds ?? 300)
        files.withLock { $0 = made }
        return made
    }

    /// A Kafka destination's producer.
    private let kafka = KafkaTopicSender()

    /// Blocking file or Kafka work on a Dispatch thread; its failure is a failed delivery.
    private func offloaded(_ work: @escaping @Sendable () throws -> Void) async throws(DeliveryFailed) {
        let result: Result<Void, any Error> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: Result { try work() }) }
        }
        do { try result.get() } catch { throw DeliveryFailed(description: "\(error)") }
    }

    /// One page per pending tenant; the number of events delivered.
    private func round(_ destination: StreamDestination, session: DatabaseSession) async throws -> Int {
        // Read (and a tenant's URL checked) once a round has something to send: an idle
        // destination costs no DNS lookup.
        var secret: [UInt8]?
        var prepared = false
        var delivered = 0
        var full = true
        while full && !Task.isCancelled {
            full = false
            for tenant in try await session.run({ try StreamCursors.pendingTenants(of: destination, on: $0) }) {
                // Paused, failed or deleted meanwhile, or another streamer's turn: not now.
                guard case .deliver(let current) = try await session.run({ try StreamDestinations.beginDelivery(destination.id, on: $0) }) else {
                    return delivered
                }
                do {
                    if !prepared {
                        secret = try await secrets.prepare(current)
                        prepared = true
                    }
                    let count = try await deliverPage(of: tenant, to: current, secret: secret, session: session)
                    try await session.run { try StreamDestinations.endDelivery(destination.id, on: $0) }
                    delivered += count
                    full = full || count == destination.batchSize
                } catch {
                    _ = try? await session.run { try StreamDestinations.endDelivery(destination.id, on: $0) }
                    throw error
                }
            }
        }
        return delivered
    }

    /// The tenant's next page: sent, then its cursor moved. The number of events (0: none final yet).
    private func deliverPage(of tenant: String, to destination: StreamDestination, secret: [UInt8]?,
                             session: DatabaseSession) async throws -> Int {
        let (events, last) = try await session.run { connection in
            let feed = EventFeed(tenantID: tenant, after: try StreamCursors.position(of: destination, tenant: tenant, on: connection),
                                 limit: destination.batchSize)
            return try ReaderSession.run(tenantID: tenant, on: connection) { try feed.read(on: $0) }
        }
        guard let last, !events.isEmpty else { return 0 }
        switch destination.kind {
        case .kafka:
            try await offloaded { try self.kafka.send(events, tenant: tenant, to: destination, secret: secret) }
        case .file:
            let lines = DeliveryRequest(kind: .file, destination: destination.name, tenant: tenant, events: events, secret: nil).body
            try await offloaded { try self.segments(of: destination).append(lines) }
        case .webhook, .splunkHEC:
            try await DeliveryRequest(kind: destination.kind, destination: destination.name, tenant: tenant, events: events, secret: secret)
                .post(to: destination.url, client: client)
        }
        try await session.run { try StreamCursors.advance(destination, to: last, delivered: events.count, on: $0) }
        return events.count
    }
}

/// One connection used from Dispatch threads, one call at a time; reopened after an error.
final class DatabaseSession: @unchecked Sendable {
    private let configuration: PostgresConfiguration
    private let lock = NSLock()
    private var connection: PostgresConnection?

    init(configuration: PostgresConfiguration) { self.configuration = configuration }

    func run<T: Sendable>(_ work: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try self.locked(work) })
            }
        }
    }

    private func locked<T>(_ work: (PostgresConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let connection = try self.connection ?? PostgresConnection(configuration: configuration)
        self.connection = connection
        do { return try work(connection) } catch {
            if !connection.isOpen { self.connection = nil }
            throw error
        }
    }

    func reset() {
        lock.lock()
        connection = nil
        lock.unlock()
    }
}
