/// One group of host CPUs that share a frequency table and a capacity: a
/// cluster of a big.LITTLE SoC, or all CPUs of a homogeneous server.
///
/// Values are kept as read from the topology file (plain `Int`s), so that
/// `Topology.check()` can report an out-of-range capacity or an unsorted table
/// with its key path instead of the decoder silently clamping it.
public struct HostCluster: Equatable, Sendable {
    /// Operator-facing name, unique within the host (`little`, `mid`, `big`).
    public var name: String
    /// Host CPU ids in this cluster.
    public var cpus: CPUList
    /// Normalised capacity of the cluster's fastest state, 0...1024
    /// (`/sys/devices/system/cpu/cpuN/cpu_capacity`).
    public var capacity: Int
    /// Available frequencies, ascending, in kHz.
    public var frequenciesKHz: [Int]
    /// True when the table is not the host's real one: the host has no
    /// cpufreq driver and `topology probe` wrote a nominal table.
    public var isNominal: Bool

    public init(name: String, cpus: CPUList, capacity: Int, frequenciesKHz: [Int], isNominal: Bool = false) {
        self.name = name
        self.cpus = cpus
        self.capacity = capacity
        self.frequenciesKHz = frequenciesKHz
        self.isNominal = isNominal
    }

    /// Highest frequency of the table (its last entry once the table is valid).
    public var maxFrequencyKHz: Int { frequenciesKHz.max() ?? 0 }
}

/// The host's governor, when it matters for the hint arithmetic: schedutil
/// runs a CPU at 1.25 × its utilization, so a util_min that should produce a
/// frequency must be divided by that headroom first.
public enum HostGovernor: String, CaseIterable, Equatable, Sendable {
    case schedutil
    case performance
    case powersave
    case ondemand
    case conservative
    case userspace
    /// No cpufreq driver on the host (no governor at all).
    case none
}

/// The host machine as vcpufreq models it.
public struct HostTopology: Equatable, Sendable {
    /// Free-form name of the host (`pixel6-like`, `this machine`).
    public var name: String
    /// The cpufreq governor the host runs (`scaling_governor`), if known.
    public var governor: HostGovernor?
    /// Every CPU the host has (`/sys/devices/system/cpu/possible`), when the
    /// file states it: then each must belong to exactly one cluster. When nil,
    /// the CPUs 0...highest listed must all belong to a cluster.
    public var possibleCPUs: CPUList?
    public var clusters: [HostCluster]

    public init(name: String = "", governor: HostGovernor? = nil, possibleCPUs: CPUList? = nil, clusters: [HostCluster]) {
        self.name = name
        self.governor = governor
        self.possibleCPUs = possibleCPUs
        self.clusters = clusters
    }

    /// Index of the cluster with this name.
    public func clusterIndex(named name: String) -> Int? {
        clusters.firstIndex { $0.name == name }
    }

    /// Index of the cluster holding this CPU (the first, if a bad file lists it twice).
    public func clusterIndex(ofCPU cpu: Int) -> Int? {
        clusters.firstIndex { $0.cpus.contains(cpu) }
    }

    /// All CPUs of all clusters, ascending.
    public var allCPUs: CPUList { CPUList(clusters.flatMap(\.cpus.ids)) }
}
