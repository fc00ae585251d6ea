import AuditCore

extension Array where Element == EncodedRow {
    /// Puts a flush's rows in the order COPY sends them: by tenant, then time, rows of the same
    /// tenant and time in the order they came. That is the order of the (tenant_id, "timestamp")
    /// indexes, so each index insert lands next to the previous one (measured here: a third less
    /// PostgreSQL CPU than random order).
    ///
    /// A flush holds the tenants of one shard, few next to its rows: the rows are grouped by
    /// tenant first (a counting sort over the batch's distinct tenants), then each tenant's rows
    /// are sorted by time alone. About 2.5 times faster than one comparison sort of whole rows.
    mutating func sortByTenantAndTime() {
        guard count > 1 else { return }
        var tenants = TenantTable(capacity: count)
        let tenantOfRow = map { tenants.ordinal(inserting: $0.tenantID) }
        // Each tenant's place in tenant order, and where its rows start.
        let byID = tenants.ids.indices.sorted { tenants.ids[$0] < tenants.ids[$1] }
        var rank = [Int](repeating: 0, count: byID.count)
        for (position, ordinal) in byID.enumerated() { rank[ordinal] = position }
        var starts = [Int](repeating: 0, count: byID.count + 1)
        for ordinal in tenantOfRow { starts[rank[ordinal] + 1] += 1 }
        for position in byID.indices { starts[position + 1] += starts[position] }
        // (time, arrival) per row, grouped by tenant; the arrival index breaks ties, so the
        // order is total and the same on every run.
        var keys = [(timestamp: Int64, index: Int)](repeating: (0, 0), count: count)
        var next = starts
        for (index, ordinal) in tenantOfRow.enumerated() {
            let position = rank[ordinal]
            keys[next[position]] = (self[index].timestamp, index)
            next[position] += 1
        }
        keys.withUnsafeMutableBufferPointer { keys in
            for position in byID.indices { keys[starts[position]..<starts[position + 1]].sort { $0 < $1 } }
        }
        var order = keys.map(\.index)
        permute(takingFrom: &order)
    }

    /// Reorders the rows in place so that row `i` is the one that was at `source[i]` (a
    /// permutation, used up on the way): no second array of rows, which for a flush of 10,000 is
    /// most of a MiB.
    private mutating func permute(takingFrom source: inout [Int]) {
        withUnsafeMutableBufferPointer { rows in
            for start in rows.indices where source[start] != start {
                // Follow the cycle through `start`, marking each place done as it is filled.
                let first = rows[start]
                var place = start
                while source[place] != start {
                    let from = source[place]
                    rows[place] = rows[from]
                    source[place] = place
                    place = from
                }
                rows[place] = first
                source[place] = place
            }
        }
    }

    /// The months the rows fall in, each once. A batch spans few months: a row costs a
    /// comparison or a few, not a hash.
    var distinctMonths: [Month] {
        var months: [Month] = []
        var lastDay = Int32.min
        for row in self {
            let day = row.unixDay
            guard day != lastDay else { continue }
            lastDay = day
            let month = Month(unixDay: day)
            if !months.contains(month) { months.append(month) }
        }
        return months
    }
}
