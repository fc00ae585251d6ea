extension EventFormat {
    /// Where in a source record of this format the mapper reads an event's `ip_address` or
    /// `user_agent` from (key paths): the mapped event keeps the whole record in its metadata,
    /// so redaction applies a rule on those fields to these paths of the copy too.
    public func sourcePaths(of field: String) -> [[String]] {
        let paths: [String] = switch (self, field) {
        case (.cloudtrail, "ip_address"): [CloudTrail.ipAddressPath]
        case (.cloudtrail, "user_agent"): [CloudTrail.userAgentPath]
        case (.k8sAudit, "ip_address"): [KubernetesAudit.ipAddressPath]
        case (.k8sAudit, "user_agent"): [KubernetesAudit.userAgentPath]
        case (.ocsf, "ip_address"): [OCSF.ipAddressPath]
        case (.ocsf, "user_agent"): [OCSF.userAgentPath]
        default: []
        }
        return paths.map { $0.split(separator: ".").map(String.init) }
    }
}
