import VCPUFreqCore

/// What /sys/devices/system/cpu says about one CPU, as read (nil = the file
/// is missing or unreadable). Filled by `SysfsReader`, turned into a
/// `HostTopology` by `SysfsProbe`.
public struct SysfsCPU: Equatable, Sendable {
    public var id: Int
    /// `cpuN/cpu_capacity` (arm64/riscv with capacity-dmips-mhz or ACPI CPPC).
    public var capacity: Int?
    /// `cpuN/topology/cluster_id`; 65535 or -1 when the firmware gives none.
    public var clusterID: Int?
    /// `cpuN/topology/physical_package_id`.
    public var packageID: Int?
    /// `cpuN/topology/cluster_cpus_list`, else `core_siblings_list`.
    public var clusterCPUs: CPUList?
    /// The cpufreq policy that covers this CPU, if any.
    public var policy: SysfsPolicy?

    public init(
        id: Int, capacity: Int? = nil, clusterID: Int? = nil, packageID: Int? = nil, clusterCPUs: CPUList? = nil,
        policy: SysfsPolicy? = nil
    ) {
        self.id = id
        self.capacity = capacity
        self.clusterID = clusterID
        self.packageID = packageID
        self.clusterCPUs = clusterCPUs
        self.policy = policy
    }
}

/// One cpufreq policy (`cpufreq/policyX/` or `cpuN/cpufreq/`).
public struct SysfsPolicy: Equatable, Sendable {
    /// `related_cpus` (all CPUs the policy governs, offline ones too), else `affected_cpus`.
    public var relatedCPUs: CPUList
    /// `scaling_available_frequencies`, ascending, kHz; nil when the driver
    /// does not list them (intel_pstate, amd-pstate, CPPC).
    public var availableFrequenciesKHz: [Int]?
    /// `cpuinfo_min_freq` / `cpuinfo_max_freq`, kHz.
    public var minimumFrequencyKHz: Int?
    public var maximumFrequencyKHz: Int?
    /// `scaling_governor`.
    public var governor: String?

    public init(
        relatedCPUs: CPUList, availableFrequenciesKHz: [Int]? = nil, minimumFrequencyKHz: Int? = nil,
        maximumFrequencyKHz: Int? = nil, governor: String? = nil
    ) {
        self.relatedCPUs = relatedCPUs
        self.availableFrequenciesKHz = availableFrequenciesKHz
        self.minimumFrequencyKHz = minimumFrequencyKHz
        self.maximumFrequencyKHz = maximumFrequencyKHz
        self.governor = governor
    }

    /// The frequency table: the listed frequencies, else the two cpuinfo
    /// bounds (one entry when they are equal), else nil.
    public var frequenciesKHz: [Int]? {
        if let availableFrequenciesKHz, !availableFrequenciesKHz.isEmpty { return availableFrequenciesKHz }
        guard let maximum = maximumFrequencyKHz, maximum > 0 else { return nil }
        guard let minimum = minimumFrequencyKHz, minimum > 0, minimum < maximum else { return [maximum] }
        return [minimum, maximum]
    }
}

/// Everything the probe reads, before any interpretation.
public struct SysfsSnapshot: Equatable, Sendable {
    /// `possible` (else `present`, else `online`, else the cpuN directories).
    public var possibleCPUs: CPUList
    public var cpus: [SysfsCPU]
    /// Highest `cpu MHz` in /proc/cpuinfo, when it was read and has one.
    public var cpuinfoMaximumMHz: Double?

    public init(possibleCPUs: CPUList, cpus: [SysfsCPU], cpuinfoMaximumMHz: Double? = nil) {
        self.possibleCPUs = possibleCPUs
        self.cpus = cpus
        self.cpuinfoMaximumMHz = cpuinfoMaximumMHz
    }
}
