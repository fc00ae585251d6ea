import Benchmark
import Foundation
import Pipeline

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 30
    )

    Benchmark("SPSC ring: 1M Ints, producer and consumer threads") { benchmark in
        let ring = SPSCRing<Int>(capacity: 16_384)
        let count = 1_000_000
        let done = DispatchSemaphore(value: 0)
        benchmark.startMeasurement()
        Thread {
            var received = 0
            while received < count { if ring.tryPop() != nil { received += 1 } }
            done.signal()
        }.start()
        for value in 0..<count { while !ring.tryPush(value) {} }
        done.wait()
        benchmark.stopMeasurement()
    }
}
