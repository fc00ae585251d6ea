import Postgres

/// The feed's horizon (`feed_horizon()`, migration 0011) against the snapshot's xmax: below xmax
/// while a writer's transaction runs and a later transaction has ended (the feed then holds that
/// one back). A horizon that stays at one value for long is a writer that does not end (an idle
/// transaction, a stuck load).
struct FeedHorizon: Equatable {
    var horizon: UInt64
    var xmax: UInt64

    var isHeldBack: Bool { horizon < xmax }

    static func read(on connection: PostgresConnection) throws -> FeedHorizon {
        let row = try connection.execute("SELECT feed_horizon()::text, pg_snapshot_xmax(pg_current_snapshot())::text").rows.first
        guard let horizon = row?[0].flatMap({ UInt64($0) }), let xmax = row?[1].flatMap({ UInt64($0) }) else {
            throw PostgresError(code: .unexpectedResult, message: "feed_horizon() returned no number")
        }
        return FeedHorizon(horizon: horizon, xmax: xmax)
    }
}
