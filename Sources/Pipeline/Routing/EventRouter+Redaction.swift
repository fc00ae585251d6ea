import AuditCore
import Crypto

/// Redaction at write time (`RedactionPolicy`): what a rule hides is gone before the event is
/// encoded, from the row and from the raw message a dead letter would keep.
extension EventRouter {
    /// Calls `body` with `event` as `rules` have it stored, and with the raw message its dead
    /// letter would keep: `wire` (the event as it came) redacted by the same rules. Returns the
    /// rejection instead when the metadata cannot be rewritten (it was validated: not expected).
    func redacting(_ event: AuditEvent, wire: UnsafeRawBufferPointer, by rules: RedactionRules,
                   _ body: (AuditEvent, UnsafeRawBufferPointer) -> Void) -> Rejection? {
        var event = event
        let hash = hasher(for: event.tenantID)
        switch rules.ipAddress {
        case .drop?: event.ipAddress = nil
        case .mask?: event.ipAddress = event.ipAddress?.network
        case .hmac?, nil: break  // hmac is refused for inet when the rule is made
        }
        var agent: String?
        if let action = rules.userAgent, let text = event.userAgent {
            switch action {
            case .drop: event.userAgent = nil
            case .mask: agent = RedactionAction.maskedText
            case .hmac: agent = hash(text, true)
            }
        }
        return Array((agent ?? "").utf8).withUnsafeBytes { agentText -> Rejection? in
            if agent != nil { event.userAgent = agentText }
            do throws(Rejection) {
                guard let metadata = event.metadata, !rules.metadata.children.isEmpty else {
                    try wireRedactor.redact(wire, paths: rules.wire, hash: hash) { body(event, $0) }
                    return nil
                }
                return try metadataRedactor.redact(metadata, paths: rules.metadata, hash: hash) { metadata -> Rejection? in
                    event.metadata = metadata
                    do throws(Rejection) {
                        try wireRedactor.redact(wire, paths: rules.wire, hash: hash) { body(event, $0) }
                        return nil
                    } catch {
                        return error
                    }
                }
            } catch {
                return error
            }
        }
    }

    /// What a dead letter of `tenant` keeps of `raw` (of a message of `size` bytes) under `rules`:
    /// the message redacted, when it is a native event's JSON; otherwise nothing of it, and a note
    /// to go into the detail. The note gives no digest of it, which would let a short secret be
    /// guessed: the message is found again at its source position.
    func redactedPayload(_ raw: UnsafeRawBufferPointer, size: Int, tenant: UUIDValue?, rules: RedactionRules) -> (payload: [UInt8], note: String?) {
        if configuration.mapper == nil, !raw.isEmpty,
           let redacted = try? wireRedactor.redact(raw, paths: rules.wire, hash: hasher(for: tenant), { Array($0) }) {
            return (redacted, nil)
        }
        let whose = tenant.map { "tenant \($0)" } ?? "a tenant not known"
        return ([], """
            raw_payload withheld: redaction rules apply to \(whose) and this message (\(size) bytes) is not an event \
            they can be applied to; it is at its source position
            """)
    }

    /// Gives what an `hmac` rule stores for a value of `tenant`'s. A value that is not a string is
    /// hashed as jsonb prints it (as `tenant redaction hash --json` does), so a dead letter's
    /// value hashes as its row's would. Masks instead when the tenant is not registered (a dead
    /// letter's, unless unknown tenants are accepted) or no key is loaded (a policy with hmac
    /// rules has one).
    private func hasher(for tenant: UUIDValue?) -> (UnsafeRawBufferPointer, Bool) -> String {
        let masked: (UnsafeRawBufferPointer, Bool) -> String = { _, _ in RedactionAction.maskedText }
        guard let tenant, let key = redaction.key else { return masked }
        let registered = knownTenants.contains(tenant)
        guard registered || configuration.unknownTenants == .accept else { return masked }
        let keyed: HMAC<SHA256>
        if let known = tenantKeys[tenant] {
            keyed = known
        } else {
            keyed = key.hasher(for: tenant)
            if tenantKeys.count >= 100_000 { tenantKeys.removeAll(keepingCapacity: true) }  // accepted unknown tenants
            tenantKeys[tenant] = keyed
        }
        let printer = hashedValuePrinter
        // The row and the dead letter's copy hash the same values: each is hashed once per event.
        let memo = HashMemo()
        return { value, isString in
            if let known = memo.hash(of: value, isString: isString) { return known }
            let printed = isString ? nil : try? printer.canonical(value)
            let hashed = RedactionKey.hash(printed ?? value, continuing: keyed)
            memo.remember(value, isString: isString, hashed)
            return hashed
        }
    }
}

/// The values one event's rules hashed, so that the copy a dead letter would keep reuses them.
private final class HashMemo {
    private var entries: [(value: [UInt8], isString: Bool, hash: String)] = []

    func hash(of value: UnsafeRawBufferPointer, isString: Bool) -> String? {
        entries.first { $0.isString == isString && $0.value.elementsEqual(value) }?.hash
    }

    func remember(_ value: UnsafeRawBufferPointer, isString: Bool, _ hash: String) {
        if entries.count < 16 { entries.append((Array(value), isString, hash)) }
    }
}

extension IPAddress {
    /// The address's network: an IPv4 address's /24, an IPv6 address's /48 (host bits zero).
    var network: IPAddress {
        switch self {
        case .v4(let address): .v4(address & 0xFFFF_FF00)
        // An IPv4 address written as IPv6 (::ffff:a.b.c.d) keeps its IPv4 network.
        case .v6(0, let low) where low >> 32 == 0xFFFF: .v6(high: 0, low: low & 0xFFFF_FFFF_FFFF_FF00)
        case .v6(let high, _): .v6(high: high & 0xFFFF_FFFF_FFFF_0000, low: 0)
        }
    }
}
