/// How the upstream `virtual-cpufreq` device presents performance levels.
public enum TableMode: String, CaseIterable, Equatable, Sendable {
    /// `perftbl_len` = table entries; the guest builds a cpufreq table and
    /// requests table values.
    case table
    /// `perftbl_len` = 1: entry 0 is the maximum performance and the guest
    /// may request any value in 1...max (the driver's "no table" mode).
    case maxOnly = "max-only"
}

/// Whether to undo the host governor's headroom when turning a requested
/// performance level into a utilization clamp.
public enum HeadroomCompensation: String, CaseIterable, Equatable, Sendable {
    /// Multiply by 0.8 (schedutil runs at 1.25 × util).
    case schedutil
    /// Use the utilization as computed.
    case none
    /// `schedutil` when the host runs schedutil, else `none`.
    case auto
}

/// How a latency-sensitive guest request is expressed on the host thread.
public enum LatencyHintKind: String, CaseIterable, Equatable, Sendable {
    /// EEVDF custom slice: `sched_runtime` of a SCHED_NORMAL thread (Linux 6.12+).
    case slice
    /// Per-thread nice value.
    case nice
    /// Ignore latency flags.
    case none
}

/// Tunables of the request → hint policy for one VM.
public struct PolicySettings: Equatable, Sendable {
    /// Changes of util_min/util_max smaller than this are not re-applied
    /// (0 = apply every change). Units of utilization (0...1024).
    public var hysteresis: Int
    /// Minimum time between two applied changes of one vCPU's hint, in µs;
    /// a request arriving sooner is held and applied when the interval ends.
    /// Schedutil's own rate limit in the guest is about 1 ms.
    public var minimumIntervalMicroseconds: Int
    /// A boost request lifts util_min to `boostUtilization` (within the cap)
    /// and holds it for this long after the vCPU's last boost request, in ms.
    public var boostHoldMilliseconds: Int
    /// util_min a boost request obtains (then limited by the VM's cap).
    public var boostUtilization: Int
    /// After this long without any request from a vCPU, its util_min decays
    /// to 0 (a hung or silent guest must not keep the host fast). 0 = never.
    public var idleDecayMilliseconds: Int
    /// The host hint used for latency-sensitive requests.
    public var latencyHint: LatencyHintKind
    /// EEVDF slice granted to a latency-sensitive vCPU, µs (kernel bounds: 100...100000).
    public var latencySliceMicroseconds: Int
    /// Nice value granted to a latency-sensitive vCPU (-20...19).
    public var latencyNice: Int
    /// When the guest must ring its shared page doorbell (kick suppression).
    public var kickMode: KickMode
    /// While kicks are suppressed, the host reads every slot at least this
    /// often, µs: the documented bound on a suppressed request's delay.
    public var pollIntervalMicroseconds: Int

    public init(
        hysteresis: Int = 8,
        minimumIntervalMicroseconds: Int = 1000,
        boostHoldMilliseconds: Int = 50,
        boostUtilization: Int = 1024,
        idleDecayMilliseconds: Int = 0,
        latencyHint: LatencyHintKind = .slice,
        latencySliceMicroseconds: Int = 300,
        latencyNice: Int = -5,
        kickMode: KickMode = .adaptive,
        pollIntervalMicroseconds: Int = 1000
    ) {
        self.hysteresis = hysteresis
        self.minimumIntervalMicroseconds = minimumIntervalMicroseconds
        self.boostHoldMilliseconds = boostHoldMilliseconds
        self.boostUtilization = boostUtilization
        self.idleDecayMilliseconds = idleDecayMilliseconds
        self.latencyHint = latencyHint
        self.latencySliceMicroseconds = latencySliceMicroseconds
        self.latencyNice = latencyNice
        self.kickMode = kickMode
        self.pollIntervalMicroseconds = pollIntervalMicroseconds
    }
}

/// A VM shape the operator allows: how many vCPUs, which host cluster each
/// one models, its performance domains and caps. A VMM attaching to the
/// daemon names the profile it runs.
public struct VMProfile: Equatable, Sendable {
    public var name: String
    /// Number of vCPUs; `clusters` (and `pinCPUs`, `domains` when given) have one entry per vCPU.
    public var vcpuCount: Int
    /// Name of the host cluster vCPU i models (its capacity and frequency table).
    public var clusters: [String]
    /// Host CPUs vCPU i may run on; nil entries (or a nil array) mean "its cluster's CPUs".
    public var pinCPUs: [CPUList?]?
    /// Performance domain of vCPU i (equal numbers share one guest cpufreq
    /// policy). nil = one domain per modeled cluster, numbered in order of
    /// first appearance.
    public var domains: [Int]?
    /// Pin each vCPU thread to its host CPUs.
    public var pin: Bool
    /// Highest utilization (0...1024) any vCPU of this VM may obtain.
    public var utilCap: Int
    public var headroom: HeadroomCompensation
    public var tableMode: TableMode
    /// Guest-physical base of the `qemu,virtual-cpufreq` windows.
    public var baseAddress: UInt64
    public var policy: PolicySettings

    public init(
        name: String,
        vcpuCount: Int,
        clusters: [String],
        pinCPUs: [CPUList?]? = nil,
        domains: [Int]? = nil,
        pin: Bool = true,
        utilCap: Int = 1024,
        headroom: HeadroomCompensation = .auto,
        tableMode: TableMode = .table,
        baseAddress: UInt64 = DeviceAddressMap.defaultBase,
        policy: PolicySettings = PolicySettings()
    ) {
        self.name = name
        self.vcpuCount = vcpuCount
        self.clusters = clusters
        self.pinCPUs = pinCPUs
        self.domains = domains
        self.pin = pin
        self.utilCap = utilCap
        self.headroom = headroom
        self.tableMode = tableMode
        self.baseAddress = baseAddress
        self.policy = policy
    }
}

/// A whole topology file: the host and the VM profiles it serves.
public struct Topology: Equatable, Sendable {
    public var host: HostTopology
    public var vms: [VMProfile]

    public init(host: HostTopology, vms: [VMProfile]) {
        self.host = host
        self.vms = vms
    }

    /// The profile with this name, or the first one when `name` is nil.
    public func profile(named name: String?) -> VMProfile? {
        guard let name else { return vms.first }
        return vms.first { $0.name == name }
    }
}
