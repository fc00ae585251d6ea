/// A run's rate at its start and at its end: the events stored per second in the first and in the
/// last tenth of the run. A path that holds its rate while the table and its indexes grow ends
/// close to where it started.
public struct RateTenths: Sendable, Equatable {
    public var first: Double
    public var last: Double
    /// nil when nothing was stored in the first tenth (a consumer still joining its group, say):
    /// no ratio says anything then.
    public var lastOverFirst: Double? { first > 0 ? last / first : nil }

    /// `samples` as the report keeps them: (seconds since the start, events/s over the interval
    /// that ends there). `end` is when the path's work ended, its wall time; samples taken after
    /// it (a consumer waiting to be sure the topic is drained) are not part of the run. Without
    /// it, the run ends at the last sample. nil for fewer than 10 samples inside the run, too
    /// short a run to cut into tenths.
    public init?(samples: [[Double]], endingAt end: Double? = nil) {
        guard samples.allSatisfy({ $0.count == 2 }), let end = end ?? samples.last?[0], end > 0,
              samples.filter({ $0[0] <= end }).count >= 10 else { return nil }
        let tenth = end / 10
        var events = (first: 0.0, last: 0.0)
        var previous = 0.0
        for sample in samples where previous < end {
            let (seconds, rate) = (min(sample[0], end), sample[1])
            // The part of this interval that lies in each tenth, at the interval's rate.
            events.first += rate * max(0, min(seconds, tenth) - previous)
            events.last += rate * max(0, seconds - max(previous, end - tenth))
            previous = seconds
        }
        first = events.first / tenth
        last = events.last / tenth
    }
}

extension BenchReport {
    public var auditIngestTenths: RateTenths? { RateTenths(samples: auditIngestRate, endingAt: auditIngest.wallSeconds) }
    public var copyBaselineTenths: RateTenths? { RateTenths(samples: copyBaselineRate, endingAt: copyBaseline.wallSeconds) }
}
