import AuditCore

/// Messages of another format (`--format`): mapped into wire-contract events, then routed as usual.
extension EventRouter {
    func submitMapped(partition: Int32, offset: Int64, next: Mark, message: UnsafeRawBufferPointer, mapper: FormatMapper,
                      context: MessageContext?) {
        let records = mapper.map(message, context: context)
        if records.count == 1, case .success(let event) = records[0] {
            return event.withUnsafeBytes { route(partition: partition, offset: offset, next: next, event: $0, raw: message, context: context) }
        }
        // A message of no records is one dead letter. Otherwise each record stands alone: those
        // that can be stored are, and each that cannot is a dead letter of its own (its record
        // number beside the message's position), all of one shard in one batch.
        guard !records.isEmpty else {
            return reject(partition: partition, offset: offset, next: next, rawMessage: message,
                          rejection: Rejection(.emptyMessage, "\(mapper.format.rawValue) message without records"))
        }
        extraRecords += records.count - 1
        keepingRecordsTogether {
            for (index, record) in records.enumerated() {
                let number = records.count == 1 ? 0 : Int32(clamping: index + 1)
                switch record {
                case .success(let event):
                    event.withUnsafeBytes {
                        route(partition: partition, offset: offset, next: next, event: $0, raw: $0, context: context, record: number)
                    }
                case .failure(var rejection):
                    if number > 0 { rejection.detail += " (of \(records.count) records)" }
                    reject(partition: partition, offset: offset, next: next, rawMessage: message, rejection: rejection, record: number)
                }
            }
        }
    }
}
