import AuditCore

/// Messages of another format (`--format`): mapped into wire-contract events, then routed as usual.
extension ShardGroup {
    func submitMapped(partition: Int32, offset: Int64, next: Mark, message: UnsafeRawBufferPointer, mapper: FormatMapper,
                      context: MessageContext?) {
        let records = mapper.map(message, context: context)
        if records.count == 1, case .success(let event) = records[0] {
            return event.withUnsafeBytes { route(partition: partition, offset: offset, next: next, event: $0, raw: message, context: context) }
        }
        // One dead letter per position: a message some record of which cannot be stored (or
        // that holds none) is dead-lettered whole, none of its records stored.
        if let problem = problem(in: records) {
            return reject(partition: partition, offset: offset, next: next, rawMessage: message, rejection: problem)
        }
        extraRecords += records.count - 1
        keepingRecordsTogether {
            for case .success(let event) in records {
                event.withUnsafeBytes { route(partition: partition, offset: offset, next: next, event: $0, raw: $0, context: context) }
            }
        }
    }

    /// Why a mapped message cannot be stored whole, if it cannot.
    private func problem(in records: [Result<[UInt8], Rejection>]) -> Rejection? {
        guard !records.isEmpty else { return Rejection(.emptyMessage, "\(configuration.mapper!.format.rawValue) message without records") }
        for (index, record) in records.enumerated() {
            var problem: Rejection?
            switch record {
            case .failure(let rejection): problem = rejection
            case .success(let bytes):
                switch bytes.withUnsafeBytes({ decoder.decode($0) }) {
                case .failure(let rejection): problem = rejection
                case .success(let event) where configuration.unknownTenants == .deadLetter && !knownTenants.contains(event.tenantID):
                    problem = Rejection(.unknownTenant, "tenant \(event.tenantID) is not registered in tenant", tenantID: event.tenantID)
                case .success: break
                }
            }
            if var problem, records.count > 1 {
                problem.detail = "record \(index + 1) of \(records.count): \(problem.detail)"
                return problem
            } else if let problem { return problem }
        }
        return nil
    }
}
