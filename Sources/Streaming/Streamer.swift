import AsyncHTTPClient
import Dispatch
import Logging
import Postgres
import ServiceLifecycle
import Synchronization

/// `audit-ingest stream`: one worker per active destination (`DestinationWorker`), started as
/// destinations become active and left to end when they are paused, failed or deleted. A
/// failing destination's worker waits alone; the others and ingest go on.
public final class Streamer: Service, Sendable {
    public struct Configuration: Sendable {
        public var database: PostgresConfiguration
        /// How often idle destinations look for new events, and the destination list is read. Default: 1 s.
        public var pollInterval: Duration
        public var secrets: Secrets

        public init(database: PostgresConfiguration, pollInterval: Duration = .seconds(1), secrets: Secrets = Secrets()) {
            self.database = database
            self.pollInterval = pollInterval
            self.secrets = secrets
        }
    }

    /// What a delivery needs before it is sent: the secret, and for a tenant's destination a
    /// public address.
    public struct Secrets: Sendable {
        /// Opens tenants' sealed secrets (`--stream-secret-key-file`); nil: their destinations fail
        /// with a message naming the option.
        public var key: SealedSecret.Key?
        /// During a rotation, the key being replaced: it only opens, never seals
        /// (`--previous-stream-secret-key-file`, `stream secret-key rotate`).
        public var previousKey: SealedSecret.Key?
        /// Tenants' destinations may be http:// and private addresses (development only).
        public var allowLocalDestinations: Bool

        public init(key: SealedSecret.Key? = nil, previousKey: SealedSecret.Key? = nil, allowLocalDestinations: Bool = false) {
            self.key = key
            self.previousKey = previousKey
            self.allowLocalDestinations = allowLocalDestinations
        }

        /// The keys that open a sealed secret, the current one first.
        public var openingKeys: [SealedSecret.Key] { [key, previousKey].compactMap { $0 } }

        /// The destination's secret; a tenant's URL is checked first (it may resolve elsewhere
        /// now). Either failing is a failed delivery, retried and reported like any other.
        func prepare(_ destination: StreamDestination) async throws(DeliveryFailed) -> [UInt8]? {
            let result: Result<[UInt8]?, any Error> = await withCheckedContinuation { continuation in
                // getaddrinfo blocks: off the cooperative pool.
                DispatchQueue.global().async {
                    continuation.resume(returning: Result {
                        if destination.managedBy == .tenant {
                            try DestinationAddress.check(destination.url, allowLocal: allowLocalDestinations)
                        }
                        return try destination.secret(keys: openingKeys)
                    })
                }
            }
            do { return try result.get() } catch { throw DeliveryFailed(description: "\(error)") }
        }
    }

    let configuration: Configuration
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger = Logger(label: "audit-ingest.stream")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Redirects are never followed: a receiver cannot send deliveries (and their signatures)
    /// elsewhere, nor a tenant's URL lead past its address check.
    static let clientConfiguration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                              timeout: .init(connect: .seconds(10), read: .seconds(30)))

    public func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.clientConfiguration)
        let session = DatabaseSession(configuration: configuration.database)
        let running = RunningDestinations()
        // SIGTERM cancels the workers between deliveries; a batch in flight is sent again next time.
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    do {
                        for destination in try await session.run({ try StreamDestinations.all(on: $0) }) where destination.state == .active {
                            guard running.start(destination.id) else { continue }
                            self.logger.info("streaming", metadata: [
                                "destination": "\(destination.name)", "kind": "\(destination.kind.rawValue)",
                                "tenant": "\(destination.tenantID ?? "all")"])
                            let worker = DestinationWorker(destinationID: destination.id, database: self.configuration.database,
                                                           client: client, pollInterval: self.configuration.pollInterval,
                                                           secrets: self.configuration.secrets, logger: self.logger)
                            group.addTask {
                                await worker.run()
                                running.end(destination.id)
                            }
                        }
                    } catch {
                        self.logger.warning("stream: cannot read the destinations; retrying", metadata: ["error": "\(error)"])
                        session.reset()
                    }
                    try? await Task.sleep(for: self.configuration.pollInterval)
                }
            }
        }
        try await client.shutdown()
    }
}

/// The destinations that have a worker.
private final class RunningDestinations: Sendable {
    private let ids = Mutex<Set<String>>([])

    /// False when `id` already has one.
    func start(_ id: String) -> Bool { ids.withLock { $0.insert(id).inserted } }

    func end(_ id: String) { _ = ids.withLock { $0.remove(id) } }
}
