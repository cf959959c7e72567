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
public enum SysfsProbe {
    public struct Result: Equatable, Sendable {
        public var topology: Topology
        /// What an operator should know (printed on stderr): nominal tables,
        /// assumed capacities, disagreeing files.
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

    /// Capacity assumed for a CPU without `cpu_capacity` (x86, or no
    /// capacity-dmips-mhz): the kernel's SCHED_CAPACITY_SCALE.
    public static let defaultCapacity = 1024

    public static func topology(from snapshot: SysfsSnapshot, hostName: String) -> Result {
        var notes: [String] = []
        let cpus = snapshot.cpus.sorted { $0.id < $1.id }

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
        let missingCapacity = cpus.filter { $0.capacity == nil }.map(\.id)
        if !missingCapacity.isEmpty {
            notes.append("no cpu_capacity for CPU \(CPUList(missingCapacity)): assumed \(defaultCapacity)")
        }

        // 2. Describe each group; CPUs without cpufreq get a nominal table.
        let nominalTable = nominalTableKHz(cpuinfoMaximumMHz: snapshot.cpuinfoMaximumMHz)
        var described: [DescribedGroup] = []
        for group in groups {
            let capacities = Set(group.cpus.map { $0.capacity ?? defaultCapacity })
            let capacity = capacities.max() ?? defaultCapacity
            if capacities.count > 1 {
                notes.append(
                    "CPUs \(CPUList(group.cpus.map(\.id))) share a policy or cluster but report capacities "
                        + "\(capacities.sorted().map(String.init).joined(separator: ", ")): used \(capacity)")
            }
            let policy = group.cpus.first?.policy
            if let table = policy?.frequenciesKHz {
                described.append(DescribedGroup(cpus: group.cpus.map(\.id), capacity: capacity, table: table, nominal: false))
            } else {
                described.append(DescribedGroup(cpus: group.cpus.map(\.id), capacity: capacity, table: nominalTable, nominal: true))
            }
        }
        let policies = cpus.compactMap(\.policy)
        if policies.isEmpty {
            let source = snapshot.cpuinfoMaximumMHz.map { "/proc/cpuinfo (cpu MHz \(formatMHz($0)))" } ?? "no frequency source"
            notes.append(
                "no cpufreq driver on this host: wrote the nominal table \(nominalTable.map(String.init).joined(separator: ", ")) kHz "
                    + "from \(source), marked nominal = true, governor = none")
        } else if policies.contains(where: { $0.frequenciesKHz == nil }) {
            notes.append("a cpufreq policy lists no frequencies: its CPUs got the nominal table")
        }

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
        if policies.isEmpty {
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

        // 5. The default VM: one vCPU per host CPU, each modeling its cluster.
        var vcpuClusters: [String] = []
        for cpu in cpus {
            if let index = clusters.firstIndex(where: { $0.cpus.contains(cpu.id) }) { vcpuClusters.append(clusters[index].name) }
        }
        if vcpuClusters.count > SharedPageABI.maximumVCPUs {
            notes.append("the default VM keeps the first \(SharedPageABI.maximumVCPUs) of \(vcpuClusters.count) CPUs")
            vcpuClusters = Array(vcpuClusters.prefix(SharedPageABI.maximumVCPUs))
        }
        let vm = VMProfile(name: "vm", vcpuCount: vcpuClusters.count, clusters: vcpuClusters)
        let host = HostTopology(name: hostName, governor: governor, possibleCPUs: snapshot.possibleCPUs, clusters: clusters)
        return Result(topology: Topology(host: host, vms: [vm]), notes: notes)
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

    private static func formatMHz(_ mhz: Double) -> String {
        "\(Int(mhz.rounded()))"
    }

    private enum GroupKey: Hashable {
        case policy(CPUList)
        case cluster(package: Int, cluster: Int)
        case capacity(Int)
    }

    private struct Group {
        var cpus: [SysfsCPU]
    }

    private struct DescribedGroup {
        var cpus: [Int]
        var capacity: Int
        var table: [Int]
        var nominal: Bool
    }
}
