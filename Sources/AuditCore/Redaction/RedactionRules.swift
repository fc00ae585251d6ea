import Foundation

/// What a redaction rule does to the value it names, before the event is stored.
public enum RedactionAction: String, Sendable, CaseIterable {
    /// The member is removed (`ip_address` and `user_agent` are stored as null).
    case drop
    /// The value is replaced by `"[masked]"`; an IP address keeps its network (IPv4 /24, IPv6 /48).
    case mask
    /// The value is replaced by `"hmac-sha256:<hex>"`, a keyed HMAC under the tenant's redaction
    /// key, so that an operator who knows a value can still find it (`tenant redaction hash`).
    case hmac

    /// What `mask` stores in place of a text value.
    public static let maskedText = "[masked]"
    /// What an `hmac` value starts with.
    public static let hmacPrefix = "hmac-sha256:"
}

/// A field a redaction rule names: the top-level `ip_address` or `user_agent`, or a dot path
/// inside `custom_metadata` (`custom_metadata.request.headers.authorization`). A path passes
/// through arrays: the rule applies to each element that is an object with that key.
public enum RedactionField: Hashable, Sendable, CustomStringConvertible {
    case ipAddress
    case userAgent
    case metadata([String])

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(parsing text: String) throws(Invalid) {
        switch text {
        case "ip_address": self = .ipAddress
        case "user_agent": self = .userAgent
        default:
            let prefix = "custom_metadata."
            guard text.hasPrefix(prefix) else {
                throw Invalid(description: """
                    unknown field \(text): a redaction rule names ip_address, user_agent or custom_metadata.PATH \
                    (a dot path of keys inside custom_metadata)
                    """)
            }
            let path = text.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty), path.count <= 32 else {
                throw Invalid(description: "\(text): each key of the path must be non-empty (at most 32 keys)")
            }
            self = .metadata(path)
        }
    }

    public var description: String {
        switch self {
        case .ipAddress: "ip_address"
        case .userAgent: "user_agent"
        case .metadata(let path): "custom_metadata." + path.joined(separator: ".")
        }
    }

    /// Why `action` cannot apply to this field, or nil when it can.
    public func refusal(of action: RedactionAction) -> String? {
        guard self == .ipAddress, action == .hmac else { return nil }
        return "ip_address is stored as inet, which cannot hold an HMAC: use drop or mask"
    }
}

/// The redaction rules that apply to one tenant's events: its own and the global ones (a
/// tenant's rule wins over a global rule for the same field).
public struct RedactionRules: Sendable {
    /// A level of the paths: the action for the value reached here, or the keys below it.
    public struct PathNode: Sendable {
        public var action: RedactionAction?
        /// The keys below this level, few: looked up by their bytes, in order.
        public private(set) var children: [Child] = []

        public struct Child: Sendable {
            public var name: [UInt8]
            public var node: PathNode
        }

        public init(action: RedactionAction? = nil) { self.action = action }

        /// True when nothing here or below redacts.
        var isEmpty: Bool { action == nil && children.isEmpty }

        /// The level below `name` (an empty one when there is none yet), for building.
        subscript(child name: String) -> PathNode {
            get { children.first { $0.name.elementsEqual(name.utf8) }?.node ?? PathNode() }
            set {
                if let index = children.firstIndex(where: { $0.name.elementsEqual(name.utf8) }) {
                    children[index].node = newValue
                } else {
                    children.append(Child(name: Array(name.utf8), node: newValue))
                }
            }
        }

        /// The level below the key `name` (its unescaped UTF-8), compared byte for byte.
        @inline(__always)
        func child(named name: UnsafeRawBufferPointer) -> PathNode? {
            guard let base = name.baseAddress, !name.isEmpty else { return nil }
            for child in children where child.name.count == name.count {
                if child.name.withUnsafeBytes({ memcmp($0.baseAddress!, base, name.count) }) == 0 { return child.node }
            }
            return nil
        }

        mutating func removeChildren() { children = [] }
    }

    public private(set) var ipAddress: RedactionAction?
    public private(set) var userAgent: RedactionAction?
    /// Paths inside the metadata object.
    public private(set) var metadata = PathNode()
    /// The same rules as paths into the event as it arrives (`metadata`, `ip_address`,
    /// `user_agent`): what a dead letter's payload is redacted with.
    public private(set) var wire = PathNode()

    /// `rules` in order: a later rule for a field replaces an earlier one. `copiesOf` is the
    /// format of mapped events' source records, which they keep in `custom_metadata.record`: a
    /// rule on `ip_address` or `user_agent` also applies to the record's field they were read
    /// from (`EventFormat.sourcePaths`).
    public init(_ rules: [(field: RedactionField, action: RedactionAction)], copiesOf format: EventFormat = .native) {
        for (field, action) in rules {
            switch field {
            case .ipAddress:
                ipAddress = action
                wire[child: "ip_address"] = PathNode(action: action)
            case .userAgent:
                userAgent = action
                wire[child: "user_agent"] = PathNode(action: action)
            case .metadata(let path):
                Self.set(action, at: path[...], in: &metadata)
            }
        }
        // A masked address in a record is a text like any other there.
        for path in format.sourcePaths(of: "ip_address") {
            if let action = ipAddress { Self.set(action, at: (["record"] + path)[...], in: &metadata) }
        }
        for path in format.sourcePaths(of: "user_agent") {
            if let action = userAgent { Self.set(action, at: (["record"] + path)[...], in: &metadata) }
        }
        if !metadata.isEmpty { wire[child: "metadata"] = metadata }
    }

    public var isEmpty: Bool { ipAddress == nil && userAgent == nil && metadata.isEmpty }

    private static func set(_ action: RedactionAction, at path: ArraySlice<String>, in node: inout PathNode) {
        guard let key = path.first else {
            node.action = action
            node.removeChildren()  // the whole value goes: rules below it have nothing left to act on
            return
        }
        guard node.action == nil else { return }  // an enclosing value is already redacted whole
        set(action, at: path.dropFirst(), in: &node[child: key])
    }
}
