import ArgumentParser
import Foundation
import Operations
import Pipeline
import ServiceLifecycle

/// `audit-ingest checkpoint`: the integrator of the batch log.
struct Checkpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append the committed batches to the batch log and sign a checkpoint of it.",
        discussion: """
            Each round gives every sealed batch not yet in the log the next position, signs a checkpoint \
            (a C2SP signed note: the log's origin, its size, its RFC 6962 root and the time) with each \
            --signing-key-file, stores it in audit_checkpoint and writes it to --checkpoint-dir: \
            SIZE.checkpoint (written once, never replaced) and latest.checkpoint. A round with nothing new \
            signs the same tree with a new time, so an idle log shows that it is idle. One integrator runs \
            at a time (an advisory lock); another waits for its next round.

            Point --checkpoint-dir at storage the database's administrators cannot rewrite (WORM, another \
            host): `audit-ingest verify --checkpoint-dir` then catches a log rewritten or cut after any \
            checkpoint there. With --every it runs until stopped (SIGINT/SIGTERM).
            """)
    @Option(name: .customLong("signing-key-file"), help: "A signing key from `audit-ingest keys generate` (repeat to sign with several, e.g. while rotating).")
    var signingKeyFiles: [String] = []
    @Option(help: "Write each checkpoint here (created if missing).") var checkpointDir: String?
    @Option(help: "Run a round every N seconds until stopped (default: one round).") var every: Double?
    @Flag(help: "Print each round as JSON.") var json = false
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard !signingKeyFiles.isEmpty else { throw ValidationError("give a signing key: --signing-key-file FILE (audit-ingest keys generate makes one)") }
        if let every, !(1...86_400).contains(every) { throw ValidationError("--every must be 1-86400 seconds") }
    }

    func run() throws {
        let integrator = LogIntegrator(signingKeys: try signingKeyFiles.map(Keys.signingKey(at:)),
                                       checkpointDirectory: checkpointDir.map { URL(fileURLWithPath: $0) })
        let connection = try database.connect()
        let stop = every.map { _ in StopOnSignal() }
        repeat {
            if let round = try integrator.run(on: connection) {
                if json {
                    try printJSON(round)
                } else {
                    print("checkpoint: \(round.treeSize) log entries (\(round.appended) new), root \(round.root)"
                          + (round.files.first.map { ", written to \($0)" } ?? ""))
                }
            } else {
                print("another integrator holds the log's lock; nothing signed this round")
            }
            fflush(nil)  // stdout may be a pipe (block-buffered)
            guard let every else { break }
            if stop?.wait(seconds: every) == true { break }
        } while true
    }
}

/// SIGINT and SIGTERM end the wait between rounds; a round under way finishes first.
final class StopOnSignal: @unchecked Sendable {
    private let stopped = DispatchSemaphore(value: 0)
    private var sources: [DispatchSourceSignal] = []

    init() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [stopped] in stopped.signal() }
            source.resume()
            sources.append(source)
        }
    }

    /// Waits up to `seconds`; true when a signal came.
    func wait(seconds: Double) -> Bool { stopped.wait(timeout: .now() + seconds) == .success }
}

/// Running the integrator inside `consume` or `admin serve`: on when a signing key is given.
struct IntegratorOptions: ParsableArguments {
    @Option(name: .customLong("signing-key-file"),
            help: "Also sign checkpoints of the batch log here, with this key from `audit-ingest keys generate` (repeat while rotating).")
    var signingKeyFiles: [String] = []
    @Option(help: "With --signing-key-file: write each checkpoint here (created if missing).") var checkpointDir: String?
    @Option(help: ArgumentHelp("With --signing-key-file: seconds between checkpoint rounds.", valueName: "seconds"))
    var checkpointEvery: Double = 10

    func validate() throws {
        guard (1...86_400).contains(checkpointEvery) else { throw ValidationError("--checkpoint-every must be 1-86400 seconds") }
        if signingKeyFiles.isEmpty, checkpointDir != nil {
            throw ValidationError("--checkpoint-dir needs --signing-key-file: checkpoints are signed by the integrator that writes them")
        }
    }

    /// The integrator's service, or nil without a signing key.
    func service(database: DatabaseOptions) throws -> ServiceGroupConfiguration.ServiceConfiguration? {
        guard !signingKeyFiles.isEmpty else { return nil }
        let integrator = LogIntegratorService(
            integrator: LogIntegrator(signingKeys: try signingKeyFiles.map(Keys.signingKey(at:)),
                                      checkpointDirectory: checkpointDir.map { URL(fileURLWithPath: $0) }),
            database: try database.configuration(), interval: .milliseconds(Int(checkpointEvery * 1000)))
        return .init(service: ThreadService(named: "log-integrator") { stop in integrator.loop(until: stop) })
    }
}
