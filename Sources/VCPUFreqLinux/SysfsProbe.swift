import VCPUFreqCore

/// Turns a `SysfsSnapshot` into a topology: host clusters plus one default
/// VM that mirrors the host. Pure, so every host shape is testable from a
/// hand-built snapshot or a fixture tree.
///
/// Clusters are CPUs that share a cpufreq policy (`related_cpus`); without
/// cpufreq, CPUs that share `cluster_id` + `physical_package_id`; when the
/// firmware gives no cluster id (65535 or -1), CPUs of equal capacity. Groups
/// that end up with the same capacity and table are merged: to the model a
/// cluster is "CPUs that look the same", and per-core policies (x86) or
/// per-core cluster ids (x86 L2 ids) would otherwise make one cluster per CPU.
/// Capacities follow `SysfsProbe+Capacity.swift`; tables of drivers that list
/// no frequencies are `FrequencyLadder`s.
public enum SysfsProbe {
    public struct Result: Equatable, Sendable {
        public var topology: Topology
        /// What an operator should know (printed on stderr): nominal tables,
        /// assumed or inferred capacities, CPUs left out, unreadable files.
        public var notes: [String]
        /// True when no cluster has a real frequency table.
        public var isNominal: Bool { topology.host.clusters.allSatisfy(\.isNominal) }
    }

    /// The nominal table used when neither cpufreq nor /proc/cpuinfo gives a
    /// frequency: any two-entry table works, since the guest only sees ratios.
    public static let fallbackNominalTableKHz = [1_000_000, 2_000_000]

    /// `cluster_id` values that mean "the firmware described no cluster":
    /// -1 on older kernels, 65535 on newer ones.
    static let unknownClusterIDs: Set<Int> = [-1, 65535]

    public static func topology(from snapshot: SysfsSnapshot, hostName: String) -> Result {
        var notes = unreadableNotes(snapshot)
        let cpus = describedCPUs(snapshot, notes: &notes)

        // 1. Group CPUs.
        var groups: [Group] = []
        var groupOfKey: [GroupKey: Int] = [:]
        var usedCapacityFallback = false
        for cpu in cpus {
            let key: GroupKey
            if let policy = cpu.policy {
                key = .policy(policy.relatedCPUs)
            } else if let cluster = cpu.clusterID, !unknownClusterIDs.contains(cluster) {
                key = .cluster(package: cpu.packageID ?? 0, cluster: cluster)
            } else {
                key = .capacity(cpu.capacity ?? defaultCapacity)
                usedCapacityFallback = true
            }
            if let index = groupOfKey[key] {
                groups[index].cpus.append(cpu)
            } else {
                groupOfKey[key] = groups.count
                groups.append(Group(cpus: [cpu]))
            }
        }
        if usedCapacityFallback {
            notes.append("no cluster_id from the firmware (65535): CPUs without cpufreq were grouped by capacity")
        }

        // 2. Capacity and table of each group; CPUs without cpufreq get a nominal table.
        let capacities = capacities(of: groups, notes: &notes)
        let nominalTable = nominalTableKHz(cpuinfoMaximumMHz: snapshot.cpuinfoMaximumMHz)
        var ladders = LadderNote()
        var described: [DescribedGroup] = []
        var withoutTable = false
        for (group, capacity) in zip(groups, capacities) {
            if let policy = group.policy, let table = table(of: policy, notes: &ladders) {
                described.append(DescribedGroup(cpus: group.cpus.map(\.id), capacity: capacity, table: table, nominal: false))
            } else {
                withoutTable = true
                described.append(DescribedGroup(cpus: group.cpus.map(\.id), capacity: capacity, table: nominalTable, nominal: true))
            }
        }
        notes += ladders.notes
        let policies = cpus.compactMap(\.policy)
        let nominalList = nominalTable.map(String.init).joined(separator: ", ")
        if snapshot.cpufreqIsUnreadable {
            let reason = snapshot.unreadable.first { $0.path == "cpufreq" }?.reason ?? ""
            notes.append(
                "cannot read devices/system/cpu/cpufreq (\(reason)): no frequency data, so every cluster got the nominal table "
                    + "\(nominalList) kHz (nominal = true) and the governor is left unset; probe as a user who can read it")
        } else if policies.isEmpty {
            let source = snapshot.cpuinfoMaximumMHz.map { "/proc/cpuinfo (cpu MHz \(formatMHz($0)))" } ?? "no frequency source"
            notes.append(
                "no cpufreq driver on this host: wrote the nominal table \(nominalList) kHz "
                    + "from \(source), marked nominal = true, governor = none")
        } else if withoutTable {
            notes.append("a cpufreq policy lists no frequencies: its CPUs got the nominal table")
        }
        if let preference = preferredCoreNote(cpus) { notes.append(preference) }

        // 3. Merge look-alike groups, order by capacity, name.
        var merged: [DescribedGroup] = []
        for group in described {
            if let index = merged.firstIndex(where: {
                $0.capacity == group.capacity && $0.table == group.table && $0.nominal == group.nominal
            }) {
                merged[index].cpus += group.cpus
            } else {
                merged.append(group)
            }
        }
        merged.sort {
            ($0.capacity, $0.table.last ?? 0, $0.cpus.min() ?? 0) < ($1.capacity, $1.table.last ?? 0, $1.cpus.min() ?? 0)
        }
        let names = clusterNames(count: merged.count)
        let clusters = zip(merged, names).map { group, name in
            HostCluster(name: name, cpus: CPUList(group.cpus), capacity: group.capacity, frequenciesKHz: group.table, isNominal: group.nominal)
        }

        // 4. Governor.
        let governor: HostGovernor?
        let governorNames = Array(Set(policies.compactMap(\.governor))).sorted()
        if snapshot.cpufreqIsUnreadable {
            governor = nil
        } else if policies.isEmpty {
            governor = HostGovernor.none
        } else if governorNames.count == 1, let known = HostGovernor(rawValue: governorNames[0]) {
            governor = known
        } else {
            governor = nil
            if governorNames.isEmpty {
                notes.append("no scaling_governor readable: governor left unset")
            } else {
                notes.append(
                    "governor \(governorNames.joined(separator: ", ")) is not one vcpufreq knows "
                        + "(\(HostGovernor.allCases.map(\.rawValue).joined(separator: "|"))): governor left unset")
            }
        }

        // 5. The default VM: one vCPU per described CPU, each modeling its cluster.
        var vcpuClusters: [String] = []
        for cpu in cpus {
            if let index = clusters.firstIndex(where: { $0.cpus.contains(cpu.id) }) { vcpuClusters.append(clusters[index].name) }
        }
        if vcpuClusters.count > SharedPageABI.maximumVCPUs {
            notes.append("the default VM keeps the first \(SharedPageABI.maximumVCPUs) of \(vcpuClusters.count) CPUs")
            vcpuClusters = Array(vcpuClusters.prefix(SharedPageABI.maximumVCPUs))
        }
        let vm = VMProfile(name: "vm", vcpuCount: vcpuClusters.count, clusters: vcpuClusters)
        let host = HostTopology(name: hostName, governor: governor, possibleCPUs: CPUList(cpus.map(\.id)), clusters: clusters)
        return Result(topology: Topology(host: host, vms: [vm]), notes: notes)
    }

    /// Online CPUs, and offline ones whose cpufreq policy could be read (a
    /// shared policy lists its offline CPUs in `related_cpus`). The rest are
    /// left out of `host.cpus` and every cluster, with a note: nothing says
    /// what an offline CPU without a readable policy looks like, and a CPU in
    /// `possible` without a `cpuN/` directory is not there at all.
    static func describedCPUs(_ snapshot: SysfsSnapshot, notes: inout [String]) -> [SysfsCPU] {
        let present = snapshot.cpus.sorted { $0.id < $1.id }
        let described = present.filter { $0.isOnline || $0.policy != nil }
        let offlineKnown = present.filter { !$0.isOnline && $0.policy != nil }.map(\.id)
        let offlineUnknown = present.filter { !$0.isOnline && $0.policy == nil }.map(\.id)
        let presentIDs = Set(present.map(\.id))
        let absent = snapshot.possibleCPUs.ids.filter { !presentIDs.contains($0) }
        if !offlineKnown.isEmpty {
            notes.append("\(cpuWord(offlineKnown)) offline: described by \(offlineKnown.count == 1 ? "its" : "their") cpufreq policy (related_cpus), in that policy's cluster")
        }
        if !offlineUnknown.isEmpty {
            notes.append(
                "\(cpuWord(offlineUnknown)) offline and no readable cpufreq policy describes \(offlineUnknown.count == 1 ? "it" : "them"): "
                    + "left out of host.cpus and every cluster (bring \(offlineUnknown.count == 1 ? "it" : "them") online and probe again)")
        }
        if !absent.isEmpty {
            notes.append("\(cpuWord(absent)) possible but not present (no cpuN directory): left out of host.cpus and every cluster")
        }
        return described
    }

    /// "CPU 6 is" / "CPUs 6-7 are".
    static func cpuWord(_ ids: [Int]) -> String {
        ids.count == 1 ? "CPU \(ids[0]) is" : "CPUs \(CPUList(ids)) are"
    }

    /// One note per reason for files that exist but could not be read. The
    /// cpufreq directory itself gets its own note (with what follows from
    /// it), and the per-CPU cpufreq links that fail with it are its echo.
    static func unreadableNotes(_ snapshot: SysfsSnapshot) -> [String] {
        let cpufreqReason = snapshot.unreadable.first { $0.path == "cpufreq" }?.reason
        var byReason: [(reason: String, paths: [String])] = []
        for entry in snapshot.unreadable where entry.path != "cpufreq" {
            if let cpufreqReason, entry.reason == cpufreqReason, entry.path.contains("/cpufreq/") || entry.path.hasPrefix("cpufreq/") {
                continue
            }
            if let index = byReason.firstIndex(where: { $0.reason == entry.reason }) {
                byReason[index].paths.append(entry.path)
            } else {
                byReason.append((entry.reason, [entry.path]))
            }
        }
        return byReason.map { "cannot read \($0.paths.joined(separator: ", ")) (\($0.reason))" }
    }

    /// Names by capacity order: "cpu" alone; little/big; little/mid/big; then cluster0...
    public static func clusterNames(count: Int) -> [String] {
        switch count {
        case 0: return []
        case 1: return ["cpu"]
        case 2: return ["little", "big"]
        case 3: return ["little", "mid", "big"]
        default: return (0..<count).map { "cluster\($0)" }
        }
    }

    /// Half and full `cpu MHz` (rounded to whole MHz, in kHz), else the fallback pair.
    public static func nominalTableKHz(cpuinfoMaximumMHz: Double?) -> [Int] {
        guard let mhz = cpuinfoMaximumMHz, mhz >= 2, mhz < 1_000_000 else { return fallbackNominalTableKHz }
        let maximumKHz = Int(mhz.rounded()) * 1000
        let halfKHz = Int((mhz / 2).rounded()) * 1000
        return halfKHz < maximumKHz ? [halfKHz, maximumKHz] : [maximumKHz]
    }

    static func formatMHz(_ mhz: Double) -> String {
        "\(Int(mhz.rounded()))"
    }

    private enum GroupKey: Hashable {
        case policy(CPUList)
        case cluster(package: Int, cluster: Int)
        case capacity(Int)
    }

    struct Group {
        var cpus: [SysfsCPU]
        /// The policy of the group's first CPU (all share it when grouped by policy).
        var policy: SysfsPolicy? { cpus.first?.policy }
    }

    private struct DescribedGroup {
        var cpus: [Int]
        var capacity: Int
        var table: [Int]
        var nominal: Bool
    }
}
