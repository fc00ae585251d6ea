import AuditCore
import Foundation
@testable import Pipeline
import Testing

/// Batches of encoded rows, as the decoding thread hands them to a flusher.
struct RowBatchTests {
    private func filled(rows: Int, maxRows: Int = 512, into batch: RowBatch? = nil, text: String = "row") -> RowBatch {
        let batch = batch ?? RowBatch(maxRows: maxRows)
        for index in 0..<rows {
            let row = Array("\(text) \(index)".utf8), raw = Array("{\"message\": \(index)}".utf8)
            row.withUnsafeBytes { row in
                raw.withUnsafeBytes { raw in
                    batch.append(partition: 3, offset: Int64(index), next: Mark(next: Int64(index + 1), prefixHash: nil),
                                 tenantID: UUIDValue(high: 1, low: UInt64(index)), timestamp: Int64(index), row: row, raw: raw)
                }
            }
        }
        return batch
    }

    #if DEBUG
    /// Only the source thread fills a batch (its state has no lock): in debug builds a second
    /// thread that appends stops the process, naming the call.
    @Test func aSecondThreadFillingABatchTrapsInDebugBuilds() async {
        await #expect(processExitsWith: .failure) {
            let batch = RowBatchTests().filled(rows: 1)
            let done = DispatchSemaphore(value: 0)
            Thread {
                _ = RowBatchTests().filled(rows: 1, into: batch)
                done.signal()
            }.start()
            done.wait()
        }
    }
    #endif

    /// A mostly empty batch is handed over as a copy that fits: each row keeps its bytes and
    /// message, and the shard's byte budget is charged what the rows hold, not the whole buffer.
    @Test func aFittedCopyKeepsEveryRowAndCostsWhatItHolds() {
        let batch = filled(rows: 5)
        let fitted = RowBatch(fitting: batch)
        batch.reset()
        _ = filled(rows: 5, into: batch, text: "another")  // the source fills the buffer again
        #expect(fitted.rows.count == 5)
        for (index, row) in fitted.rows.enumerated() {
            #expect(Array(row.rowBytes) == Array("row \(index)".utf8))
            #expect(row.rawMessage == Array("{\"message\": \(index)}".utf8))
            #expect(row.offset == Int64(index) && row.tenantID == UUIDValue(high: 1, low: UInt64(index)))
        }
        #expect(fitted.capacity == fitted.usedBytes)
        #expect(fitted.byteCount < 1024, "charged \(fitted.byteCount) bytes for five short rows")
        #expect(batch.capacity == RowBatch.defaultCapacity, "the source keeps filling its own buffer")
    }

    /// Full at its row limit; a row that does not fit goes to a new batch, one larger than the
    /// default when the row needs it.
    @Test func aBatchIsFullAtItsRowLimitOrWhenARowDoesNotFit() {
        #expect(!filled(rows: 1, maxRows: 2).isFull && filled(rows: 2, maxRows: 2).isFull)
        let batch = filled(rows: 1)
        #expect(batch.hasRoom(forBytes: RowBatch.defaultCapacity - batch.usedBytes))
        #expect(!batch.hasRoom(forBytes: RowBatch.defaultCapacity - batch.usedBytes + 1))
        #expect(RowBatch(maxRows: 2, neededBytes: RowBatch.defaultCapacity * 2).capacity == RowBatch.defaultCapacity * 2)
    }
}
