/// Where a guest request came from.
public enum RequestSource: String, Equatable, Sendable, CaseIterable {
    /// `set_perf` of the upstream virtual-cpufreq windows.
    case upstreamRegister = "set_perf"
    /// `util_hint` of the util-hint windows.
    case utilHintRegister = "util_hint"
    /// A slot of the shared page.
    case sharedPage = "shared_page"
    /// PERFORMANCE_LEVEL_SET / LIMITS_SET of the SCMI performance protocol
    /// (for the domain's first vCPU; the policy applies it to the domain).
    case scmi = "scmi"
}

/// What a guest asked for on one vCPU, already validated by the device model
/// (utilization within 0...1024, performance within 1...max of the vCPU's
/// table). A new request from a vCPU replaces its previous one.
public struct GuestRequest: Equatable, Sendable {
    /// The vCPU whose performance is requested (the window's vCPU, not
    /// necessarily the vCPU that executed the access).
    public var vcpu: Int
    /// Requested performance, kHz.
    public var performanceKHz: UInt32?
    /// Requested utilization, 0...1024.
    public var utilization: UInt32?
    /// The work on this vCPU is latency-sensitive. nil: the source cannot
    /// say (registers), keep what the shared page last said.
    public var latencySensitive: Bool?
    /// A short boost is requested.
    public var boost: Bool
    public var source: RequestSource

    public init(
        vcpu: Int, performanceKHz: UInt32? = nil, utilization: UInt32? = nil,
        latencySensitive: Bool? = nil, boost: Bool = false, source: RequestSource
    ) {
        self.vcpu = vcpu
        self.performanceKHz = performanceKHz
        self.utilization = utilization
        self.latencySensitive = latencySensitive
        self.boost = boost
        self.source = source
    }
}

/// A latency hint for a vCPU thread.
public enum LatencyHint: Equatable, Sendable, CustomStringConvertible {
    /// Leave the thread's original slice and nice.
    case none
    /// EEVDF custom slice (`sched_runtime` on SCHED_NORMAL), µs.
    case slice(microseconds: UInt32)
    /// Nice value -20...19.
    case nice(Int8)

    public var description: String {
        switch self {
        case .none: return "none"
        case .slice(let us): return "slice=\(us)us"
        case .nice(let n): return "nice=\(n)"
        }
    }
}

/// What the host should do to one vCPU thread. Actuators turn this into
/// uclamp, cgroup uclamp, slice/nice, affinity or a BPF map entry.
public struct HostHint: Equatable, Sendable, CustomStringConvertible {
    /// Lowest utilization the scheduler should assume, 0...1024.
    public var utilMin: UInt16
    /// Highest utilization, 0...1024 (1024 = unclamped).
    public var utilMax: UInt16
    public var latency: LatencyHint
    /// Host CPUs to pin the thread to; nil = leave affinity alone.
    public var affinity: CPUList?

    public init(utilMin: UInt16 = 0, utilMax: UInt16 = 1024, latency: LatencyHint = .none, affinity: CPUList? = nil) {
        self.utilMin = utilMin
        self.utilMax = utilMax
        self.latency = latency
        self.affinity = affinity
    }

    /// The hint of a vCPU nobody has asked anything for.
    public static let neutral = HostHint()

    public var description: String {
        var text = "util_min=\(utilMin) util_max=\(utilMax) latency=\(latency)"
        if let affinity { text += " cpus=\(affinity)" }
        return text
    }
}
