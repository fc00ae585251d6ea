/// When the Kafka consumer stops fetching. The polling thread takes only as many messages as the
/// rings can hold; when they stay (nearly) full for `pauseAfter` — PostgreSQL is down or a flush
/// is very slow — it pauses the partitions and keeps polling for the group protocol, and resumes
/// once the rings are half empty. Short waits (the rings refill between two flushes) never pause,
/// since a pause drops what librdkafka had prefetched.
struct Backpressure {
    /// Below this much room the consumer waits instead of polling a small batch (small batches
    /// cost a watermark per partition and shard each): an eighth of a ring.
    let minimumRoom: Int

    enum Action { case pause, resume, none }

    let pauseAfter: Duration
    let resumeRoom: Int
    private(set) var isPaused = false
    private var stalledSince: ContinuousClock.Instant?

    init(pauseAfter: Duration, ringCapacity: Int) {
        self.pauseAfter = pauseAfter
        resumeRoom = ringCapacity / 2
        minimumRoom = ringCapacity / 8
    }

    /// `room`: free slots in the fullest ring.
    mutating func update(room: Int, now: ContinuousClock.Instant = .now) -> Action {
        if isPaused {
            guard room >= resumeRoom else { return .none }
            isPaused = false
            stalledSince = nil
            return .resume
        }
        guard room < minimumRoom else {
            stalledSince = nil
            return .none
        }
        let since = stalledSince ?? now
        stalledSince = since
        guard since.duration(to: now) >= pauseAfter else { return .none }
        isPaused = true
        return .pause
    }
}
