/// A run's rate at its start and at its end: the events stored per second in the first and in the
/// last tenth of the time its samples span. A path that holds its rate while the table and its
/// indexes grow ends close to where it started.
public struct RateTenths: Sendable, Equatable {
    public var first: Double
    public var last: Double
    public var lastOverFirst: Double { first > 0 ? last / first : 0 }

    /// `samples` as the report keeps them: (seconds since the start, events/s over the interval
    /// that ends there). nil for fewer than 10 samples, too short a run to cut into tenths.
    public init?(samples: [[Double]]) {
        guard samples.count >= 10, samples.allSatisfy({ $0.count == 2 }), let end = samples.last?[0], end > 0 else { return nil }
        var events = (first: 0.0, last: 0.0)
        var previous = 0.0
        for sample in samples {
            let (seconds, rate) = (sample[0], sample[1])
            // The part of this interval that lies in each tenth, at the interval's rate.
            events.first += rate * max(0, min(seconds, end / 10) - previous)
            events.last += rate * max(0, seconds - max(previous, end * 0.9))
            previous = seconds
        }
        first = events.first / (end / 10)
        last = events.last / (end / 10)
    }
}

extension BenchReport {
    public var auditIngestTenths: RateTenths? { RateTenths(samples: auditIngestRate) }
    public var copyBaselineTenths: RateTenths? { RateTenths(samples: copyBaselineRate) }
}
