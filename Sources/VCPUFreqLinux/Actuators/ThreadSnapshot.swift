import VCPUFreqCore

/// A thread's original scheduling attributes, captured at attach so detach,
/// daemon exit and crash recovery (through the journal) can put them back.
/// Each facet actuator fills its own part; a part left nil was not captured
/// (its facet is off) and is not restored.
public struct ThreadSnapshot: Codable, Equatable, Sendable {
    /// policy, flags (reset-on-fork), nice, priority, runtime (the EEVDF
    /// slice of fair policies), deadline, period: what the latency facet changes.
    public var scheduling: SchedAttr?
    /// The per-thread uclamp values; nil when the kernel cannot report them
    /// (no CONFIG_UCLAMP_TASK), in which case restore uses 0 / 1024.
    public var utilClamp: UtilClamp?
    /// The CPU affinity mask.
    public var affinity: CPUList?
    /// The thread's cgroups (v2 path and v1 `cpu` path).
    public var cgroup: CgroupPlacement?
    /// Whether SCHED_RESET_ON_FORK was set before the clamp facet set it
    /// (the latency facet keeps its own copy in `scheduling.flags`).
    public var resetOnFork: Bool?

    public init(
        scheduling: SchedAttr? = nil, utilClamp: UtilClamp? = nil, affinity: CPUList? = nil,
        cgroup: CgroupPlacement? = nil, resetOnFork: Bool? = nil
    ) {
        self.scheduling = scheduling
        self.utilClamp = utilClamp
        self.affinity = affinity
        self.cgroup = cgroup
        self.resetOnFork = resetOnFork
    }

    public var policy: SchedPolicy? { scheduling?.policy }
    public var nice: Int32? { scheduling?.nice }
    public var priority: UInt32? { scheduling?.priority }
    public var runtimeNanoseconds: UInt64? { scheduling?.runtimeNanoseconds }

    /// Per-thread utilization clamps, 0...1024.
    public struct UtilClamp: Codable, Equatable, Sendable {
        public var min: UInt32
        public var max: UInt32
        public init(min: UInt32, max: UInt32) {
            self.min = min
            self.max = max
        }
        /// What a thread has when nobody clamped it.
        public static let unclamped = UtilClamp(min: 0, max: 1024)
    }

    /// Where the thread sat in the cgroup hierarchies.
    public struct CgroupPlacement: Codable, Equatable, Sendable {
        /// Path in the cgroup v2 hierarchy (`0::<path>`), e.g. `/system.slice/vmm.service`.
        public var unifiedPath: String?
        /// Path in the v1 hierarchy of the `cpu` controller (hybrid hosts).
        public var v1CPUPath: String?
        public init(unifiedPath: String?, v1CPUPath: String?) {
            self.unifiedPath = unifiedPath
            self.v1CPUPath = v1CPUPath
        }
    }

    private enum CodingKeys: String, CodingKey { case scheduling, utilClamp, affinity, cgroup, resetOnFork }

    // CPUList is written the kernel's way ("0-3,6") so the journal stays readable.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        scheduling = try container.decodeIfPresent(SchedAttr.self, forKey: .scheduling)
        utilClamp = try container.decodeIfPresent(UtilClamp.self, forKey: .utilClamp)
        cgroup = try container.decodeIfPresent(CgroupPlacement.self, forKey: .cgroup)
        resetOnFork = try container.decodeIfPresent(Bool.self, forKey: .resetOnFork)
        if let text = try container.decodeIfPresent(String.self, forKey: .affinity) {
            do {
                affinity = try CPUList(parsing: text)
            } catch {
                throw DecodingError.dataCorruptedError(
                    forKey: .affinity, in: container, debugDescription: error.description)
            }
        } else {
            affinity = nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(scheduling, forKey: .scheduling)
        try container.encodeIfPresent(utilClamp, forKey: .utilClamp)
        try container.encodeIfPresent(cgroup, forKey: .cgroup)
        try container.encodeIfPresent(affinity?.description, forKey: .affinity)
        try container.encodeIfPresent(resetOnFork, forKey: .resetOnFork)
    }
}
