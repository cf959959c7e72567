import TOMLKit
import VCPUFreqCore

/// TOML tables → `Topology`. Values are taken as written (range checks are
/// `Topology.check()`'s job, so they are reported once, with key paths);
/// this layer reports only what cannot become a `Topology` field: wrong
/// types, unknown keys, missing required keys, unparsable CPU lists.
///
/// A value that fails is replaced by a placeholder so decoding goes on and
/// every problem in the file is reported in one run.
struct TopologyDecoder {
    var fields = TOMLFields()

    static let rootKeys = ["host", "vm"]
    static let hostKeys = ["name", "governor", "cpus", "cluster"]
    static let clusterKeys = ["name", "cpus", "capacity", "frequencies_khz", "nominal"]
    static let vmKeys = [
        "name", "vcpus", "clusters", "pin_cpus", "domains", "pin", "util_cap", "headroom", "table_mode",
        "base_address", "policy",
    ]
    static let policyKeys = [
        "hysteresis", "min_interval_us", "boost_hold_ms", "boost_util", "idle_decay_ms", "latency_hint",
        "latency_slice_us", "latency_nice", "kick_mode", "poll_interval_us",
    ]

    mutating func decode(_ root: TOMLTable) -> Topology {
        fields.rejectUnknownKeys(root, path: "", allowed: Self.rootKeys)
        let host: HostTopology
        if let table = fields.table(root, "host", path: "") {
            host = decodeHost(table)
        } else {
            if root["host"] == nil { fields.error("host", "missing [host] table") }
            host = HostTopology(clusters: [])
        }
        var vms: [VMProfile] = []
        for (index, table) in (fields.tables(root, "vm", path: "") ?? []).enumerated() {
            vms.append(decodeVM(table, path: "vm[\(index)]"))
        }
        return Topology(host: host, vms: vms)
    }

    mutating func decodeHost(_ table: TOMLTable) -> HostTopology {
        let path = "host"
        fields.rejectUnknownKeys(table, path: path, allowed: Self.hostKeys)
        var host = HostTopology(clusters: [])
        host.name = fields.string(table, "name", path: path) ?? ""
        host.governor = fields.choice(table, "governor", path: path, as: HostGovernor.self)
        if let cpus = table["cpus"] { host.possibleCPUs = fields.cpuList(cpus, path: "\(path).cpus") }
        for (index, cluster) in (fields.tables(table, "cluster", path: path) ?? []).enumerated() {
            host.clusters.append(decodeCluster(cluster, path: "\(path).cluster[\(index)]"))
        }
        return host
    }

    mutating func decodeCluster(_ table: TOMLTable, path: String) -> HostCluster {
        fields.rejectUnknownKeys(table, path: path, allowed: Self.clusterKeys)
        let name = fields.string(table, "name", path: path, required: true) ?? ""
        let cpus = fields.value(table, "cpus", path: path, required: true).flatMap {
            fields.cpuList($0, path: "\(path).cpus")
        }
        // Placeholders for failed values are chosen so that check() adds no
        // second report about them (1024 is a valid capacity).
        let capacity = fields.int(table, "capacity", path: path, required: true) ?? 1024
        let frequencies = fields.array(table, "frequencies_khz", path: path, required: true) { fields, value, path in
            fields.int(value, path: path)
        }
        let nominal = fields.bool(table, "nominal", path: path) ?? false
        return HostCluster(
            name: name, cpus: cpus ?? CPUList([]), capacity: capacity, frequenciesKHz: frequencies ?? [],
            isNominal: nominal)
    }

    mutating func decodeVM(_ table: TOMLTable, path: String) -> VMProfile {
        fields.rejectUnknownKeys(table, path: path, allowed: Self.vmKeys)
        let name = fields.string(table, "name", path: path, required: true) ?? ""
        let clusters = fields.array(table, "clusters", path: path, required: true) { fields, value, path in
            fields.string(value, path: path)
        } ?? []
        var profile = VMProfile(
            name: name, vcpuCount: fields.int(table, "vcpus", path: path) ?? clusters.count, clusters: clusters)
        profile.pinCPUs = fields.array(table, "pin_cpus", path: path) { fields, value, path -> CPUList?? in
            // "" = the vCPU's own cluster; [] stays an (invalid) empty set.
            if value.string == "" { return .some(nil) }
            return fields.cpuList(value, path: path).map { .some($0) }
        }
        profile.domains = fields.array(table, "domains", path: path) { fields, value, path in
            fields.int(value, path: path)
        }
        if let pin = fields.bool(table, "pin", path: path) { profile.pin = pin }
        if let cap = fields.int(table, "util_cap", path: path) { profile.utilCap = cap }
        if let headroom = fields.choice(table, "headroom", path: path, as: HeadroomCompensation.self) {
            profile.headroom = headroom
        }
        if let mode = fields.choice(table, "table_mode", path: path, as: TableMode.self) { profile.tableMode = mode }
        if let base = fields.int(table, "base_address", path: path) {
            if base < 0 {
                fields.error("\(path).base_address", "\(base) is negative; a guest-physical address is 0 or more")
            } else {
                profile.baseAddress = UInt64(base)
            }
        }
        if let policy = fields.table(table, "policy", path: path) {
            profile.policy = decodePolicy(policy, path: "\(path).policy")
        }
        return profile
    }

    mutating func decodePolicy(_ table: TOMLTable, path: String) -> PolicySettings {
        fields.rejectUnknownKeys(table, path: path, allowed: Self.policyKeys)
        var policy = PolicySettings()
        if let value = fields.int(table, "hysteresis", path: path) { policy.hysteresis = value }
        if let value = fields.int(table, "min_interval_us", path: path) { policy.minimumIntervalMicroseconds = value }
        if let value = fields.int(table, "boost_hold_ms", path: path) { policy.boostHoldMilliseconds = value }
        if let value = fields.int(table, "boost_util", path: path) { policy.boostUtilization = value }
        if let value = fields.int(table, "idle_decay_ms", path: path) { policy.idleDecayMilliseconds = value }
        if let value = fields.choice(table, "latency_hint", path: path, as: LatencyHintKind.self) {
            policy.latencyHint = value
        }
        if let value = fields.int(table, "latency_slice_us", path: path) { policy.latencySliceMicroseconds = value }
        if let value = fields.int(table, "latency_nice", path: path) { policy.latencyNice = value }
        if let value = fields.choice(table, "kick_mode", path: path, as: KickMode.self) { policy.kickMode = value }
        if let value = fields.int(table, "poll_interval_us", path: path) { policy.pollIntervalMicroseconds = value }
        return policy
    }
}
