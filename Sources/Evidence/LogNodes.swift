/// The stored nodes of the log's tree (migration 0022), so that a proof costs O(log² n) lookups,
/// not a read of every leaf.
///
/// Node (level L, index i) is the root of the perfect subtree over leaves [i·2^L, (i+1)·2^L);
/// level 0 holds the leaves. RFC 6962 splits a range at the largest power of two below its size,
/// so every perfect range a proof needs starts at a multiple of its size: one stored node.
public struct LogNodeID: Hashable, Sendable {
    public var level: Int
    public var index: Int64

    public init(level: Int, index: Int64) {
        self.level = level
        self.index = index
    }
}

/// The leaves [start, start + count) of the log: a proof's sibling, or a part of one.
public struct LeafRange: Hashable, Sendable {
    public var start: Int64
    public var count: Int64

    public init(start: Int64, count: Int64) {
        precondition(start >= 0 && count > 0, "an empty or negative range of leaves")
        self.start = start
        self.count = count
    }

    var isPerfect: Bool { count & (count - 1) == 0 && start % count == 0 }

    /// The stored nodes the range's hash is folded from, left to right.
    public var nodes: [LogNodeID] {
        if isPerfect { return [LogNodeID(level: count.trailingZeroBitCount, index: start / count)] }
        let split = Int64(MerkleProof.largestPowerOfTwo(below: Int(count)))
        return LeafRange(start: start, count: split).nodes + LeafRange(start: start + split, count: count - split).nodes
    }

    /// MTH of the range from stored nodes; nil when one is missing.
    public func hash(_ stored: [LogNodeID: TreeHash]) -> TreeHash? {
        if isPerfect { return stored[LogNodeID(level: count.trailingZeroBitCount, index: start / count)] }
        let split = Int64(MerkleProof.largestPowerOfTwo(below: Int(count)))
        guard let left = LeafRange(start: start, count: split).hash(stored),
              let right = LeafRange(start: start + split, count: count - split).hash(stored) else { return nil }
        return MerkleTree.node(left, right)
    }

    /// MTH of the range from all the leaves.
    public func hash(leaves: [TreeHash]) -> TreeHash { MerkleTree.root(Array(leaves[Int(start)..<Int(start + count)])) }
}

extension MerkleProof {
    /// The sibling ranges of PATH(index, size), nearest first: hash each to get the path.
    public static func inclusionRanges(index: Int64, size: Int64) -> [LeafRange] {
        precondition(index >= 0 && index < size, "no leaf \(index) in a tree of \(size)")
        var ranges: [LeafRange] = []
        var start: Int64 = 0, count = size, position = index
        while count > 1 {
            let split = Int64(largestPowerOfTwo(below: Int(count)))
            if position < split {
                ranges.append(LeafRange(start: start + split, count: count - split))
                count = split
            } else {
                ranges.append(LeafRange(start: start, count: split))
                start += split
                count -= split
                position -= split
            }
        }
        return ranges.reversed()
    }

    /// The ranges of PROOF(first, size), in the proof's order: hash each to get the proof.
    public static func consistencyRanges(first: Int64, size: Int64) -> [LeafRange] {
        precondition(first > 0 && first <= size, "no consistency proof from \(first) to \(size) leaves")
        func subproof(_ m: Int64, _ start: Int64, _ count: Int64, _ complete: Bool) -> [LeafRange] {
            if m == count { return complete ? [] : [LeafRange(start: start, count: count)] }
            let split = Int64(largestPowerOfTwo(below: Int(count)))
            if m <= split {
                return subproof(m, start, split, complete) + [LeafRange(start: start + split, count: count - split)]
            }
            return subproof(m - split, start + split, count - split, false) + [LeafRange(start: start, count: split)]
        }
        return subproof(first, 0, size, true)
    }
}
