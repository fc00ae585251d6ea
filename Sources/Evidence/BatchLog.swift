import Crypto

/// The log of batches: one RFC 6962 leaf per integrated batch, in the order the integrator
/// appended them, SHA-256(0x00 ‖ "B" ‖ batch id (int64, big-endian) ‖ batch digest).
public enum BatchLog {
    public static func leaf(batch id: Int64, digest: TreeHash) -> TreeHash {
        var data: [UInt8] = [LeafKind.batch]
        data.appendBigEndian(id)
        data += digest.bytes
        return MerkleTree.leaf(data)
    }
}

/// The right edge of a growing RFC 6962 tree: the roots of its perfect subtrees, largest first
/// (one per set bit of the size). Appending a leaf and taking the root cost O(log n), so the
/// integrator keeps this, not the leaves, between checkpoints.
public struct LogFrontier: Sendable, Equatable {
    public private(set) var size: Int64 = 0
    public private(set) var subtrees: [TreeHash] = []

    public init() {}

    /// A stored frontier: `bytes` are the subtree roots, 32 bytes each, largest first.
    public init(size: Int64, bytes: [UInt8]) throws(EvidenceFormatError) {
        guard size >= 0, bytes.count == size.nonzeroBitCount * 32 else {
            throw EvidenceFormatError("a frontier of \(size) leaves holds \(size.nonzeroBitCount) hashes, not \(bytes.count / 32)")
        }
        self.size = size
        subtrees = stride(from: 0, to: bytes.count, by: 32).map { TreeHash(bytes[$0..<($0 + 32)])! }
    }

    public var bytes: [UInt8] { subtrees.flatMap(\.bytes) }

    public mutating func append(_ leaf: TreeHash) { _ = appendReturningNodes(leaf) }

    /// Appends `leaf` and returns the nodes it completes (`LogNodeID`): the leaf itself at level
    /// 0 and each perfect subtree it closes, as the integrator stores them.
    @discardableResult
    public mutating func appendReturningNodes(_ leaf: TreeHash) -> [(id: LogNodeID, hash: TreeHash)] {
        let position = size
        var nodes = [(id: LogNodeID(level: 0, index: position), hash: leaf)]
        var node = leaf
        var carried = size
        while carried & 1 == 1 {
            node = MerkleTree.node(subtrees.removeLast(), node)
            carried >>= 1
            nodes.append((LogNodeID(level: nodes.count, index: position >> nodes.count), node))
        }
        subtrees.append(node)
        size += 1
        return nodes
    }

    /// The tree hash of the leaves so far: the subtrees folded from the right.
    public var root: TreeHash {
        guard var root = subtrees.last else { return MerkleTree.root([]) }
        for subtree in subtrees.dropLast().reversed() { root = MerkleTree.node(subtree, root) }
        return root
    }
}
