import VCPUFreqCore

/// What /sys/devices/system/cpu says about one CPU, as read (nil = the file
/// is missing or unreadable). Filled by `SysfsReader`, turned into a
/// `HostTopology` by `SysfsProbe`.
public struct SysfsCPU: Equatable, Sendable {
    public var id: Int
    /// In the `online` list (the kernel removes an offline CPU's `topology/`,
    /// and since Linux 6.11 its `cpu_capacity`, but keeps its `cpuN/`).
    public var isOnline: Bool
    /// `cpuN/cpu_capacity`: the kernel's own capacity, from capacity-dmips-mhz
    /// or ACPI CPPC (drivers/base/arch_topology.c: arm, arm64, riscv; x86 has none).
    public var capacity: Int?
    /// `cpuN/topology/cluster_id`; 65535 or -1 when the firmware gives none.
    public var clusterID: Int?
    /// `cpuN/topology/physical_package_id`.
    public var packageID: Int?
    /// `cpuN/topology/cluster_cpus_list`, else `core_siblings_list`.
    public var clusterCPUs: CPUList?
    /// `cpuN/acpi_cppc/` (present when the firmware has _CPC objects).
    public var cppc: SysfsCPPC?
    /// The cpufreq policy that covers this CPU, if one could be read.
    public var policy: SysfsPolicy?

    public init(
        id: Int, isOnline: Bool = true, capacity: Int? = nil, clusterID: Int? = nil, packageID: Int? = nil,
        clusterCPUs: CPUList? = nil, cppc: SysfsCPPC? = nil, policy: SysfsPolicy? = nil
    ) {
        self.id = id
        self.isOnline = isOnline
        self.capacity = capacity
        self.clusterID = clusterID
        self.packageID = packageID
        self.clusterCPUs = clusterCPUs
        self.cppc = cppc
        self.policy = policy
    }
}

/// `cpuN/acpi_cppc/` (Documentation/admin-guide/acpi/cppc_sysfs.rst): the
/// firmware's abstract performance scale. On Intel with HWP the registers are
/// the HWP capabilities, in units comparable across P- and E-cores; on AMD
/// with preferred cores `highest_perf` is the core's preference rank.
public struct SysfsCPPC: Equatable, Sendable {
    public var highestPerformance: Int?
    public var nominalPerformance: Int?
    public var lowestPerformance: Int?
    /// `nominal_freq`, MHz (0 or missing when the firmware gives none).
    public var nominalFrequencyMHz: Int?

    public init(highestPerformance: Int? = nil, nominalPerformance: Int? = nil, lowestPerformance: Int? = nil, nominalFrequencyMHz: Int? = nil) {
        self.highestPerformance = highestPerformance
        self.nominalPerformance = nominalPerformance
        self.lowestPerformance = lowestPerformance
        self.nominalFrequencyMHz = nominalFrequencyMHz
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
    /// `scaling_driver` (`intel_pstate`, `intel_cpufreq`, `amd-pstate-epp`, `cppc_cpufreq`, ...).
    public var driver: String?
    /// `base_frequency` (intel_pstate with HWP): the guaranteed, sustainable frequency, kHz.
    public var baseFrequencyKHz: Int?
    /// The amd-pstate attributes of the policy, when the driver is amd-pstate.
    public var amdPState: SysfsAMDPState?

    public init(
        relatedCPUs: CPUList, availableFrequenciesKHz: [Int]? = nil, minimumFrequencyKHz: Int? = nil,
        maximumFrequencyKHz: Int? = nil, governor: String? = nil, driver: String? = nil, baseFrequencyKHz: Int? = nil,
        amdPState: SysfsAMDPState? = nil
    ) {
        self.relatedCPUs = relatedCPUs
        self.availableFrequenciesKHz = availableFrequenciesKHz
        self.minimumFrequencyKHz = minimumFrequencyKHz
        self.maximumFrequencyKHz = maximumFrequencyKHz
        self.governor = governor
        self.driver = driver
        self.baseFrequencyKHz = baseFrequencyKHz
        self.amdPState = amdPState
    }

    /// True for intel_pstate in either mode (`intel_cpufreq` is its passive mode).
    public var isIntelPState: Bool { driver == "intel_pstate" || driver == "intel_cpufreq" }
}

/// The amd-pstate files of a policy (Documentation/admin-guide/pm/amd-pstate.rst).
public struct SysfsAMDPState: Equatable, Sendable {
    /// `amd_pstate_highest_perf`: the CPPC numerator of the maximum frequency
    /// (on preferred-core parts since Linux 6.9 the same fixed value, 166 or
    /// 196, on every core of one kind).
    public var highestPerformance: Int?
    /// `amd_pstate_max_freq`, kHz.
    public var maximumFrequencyKHz: Int?
    /// `amd_pstate_lowest_nonlinear_freq`, kHz: below it, power savings stop being worth the speed.
    public var lowestNonlinearFrequencyKHz: Int?
    /// `amd_pstate_prefcore_ranking`: the core's preferred-core rank; larger is
    /// preferred, and the platform changes it at runtime (Linux 6.9+).
    public var preferredCoreRanking: Int?
    /// `amd_pstate_hw_prefcore`: `enabled` / `disabled` (Linux 6.9+).
    public var hardwarePreferredCore: Bool?

    public init(
        highestPerformance: Int? = nil, maximumFrequencyKHz: Int? = nil, lowestNonlinearFrequencyKHz: Int? = nil,
        preferredCoreRanking: Int? = nil, hardwarePreferredCore: Bool? = nil
    ) {
        self.highestPerformance = highestPerformance
        self.maximumFrequencyKHz = maximumFrequencyKHz
        self.lowestNonlinearFrequencyKHz = lowestNonlinearFrequencyKHz
        self.preferredCoreRanking = preferredCoreRanking
        self.hardwarePreferredCore = hardwarePreferredCore
    }
}

/// A file or directory that exists but could not be read, with the reason:
/// a directory the caller may not list (EACCES), an inactive policy's
/// attribute (EBUSY: the kernel answers so for every CPU of it offline).
public struct SysfsUnreadable: Equatable, Sendable {
    /// Relative to `devices/system/cpu` (`cpufreq`, `cpufreq/policy6/related_cpus`).
    public var path: String
    /// strerror text (`Permission denied`).
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Everything the probe reads, before any interpretation.
public struct SysfsSnapshot: Equatable, Sendable {
    /// `possible` (else `present`, else `online`, else the cpuN directories).
    public var possibleCPUs: CPUList
    /// The CPUs that have a `cpuN/` directory (present CPUs), each as read.
    public var cpus: [SysfsCPU]
    /// Highest `cpu MHz` in /proc/cpuinfo, when it was read and has one.
    public var cpuinfoMaximumMHz: Double?
    /// Files and directories that exist but could not be read.
    public var unreadable: [SysfsUnreadable]

    public init(possibleCPUs: CPUList, cpus: [SysfsCPU], cpuinfoMaximumMHz: Double? = nil, unreadable: [SysfsUnreadable] = []) {
        self.possibleCPUs = possibleCPUs
        self.cpus = cpus
        self.cpuinfoMaximumMHz = cpuinfoMaximumMHz
        self.unreadable = unreadable
    }

    /// True when the `cpufreq` directory itself could not be listed.
    public var cpufreqIsUnreadable: Bool { unreadable.contains { $0.path == "cpufreq" } }
}
