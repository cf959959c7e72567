import VCPUFreqCore

/// The actuators chosen for this host: the first available mechanism of
/// each preference list. `notes` say why preferred ones were passed over.
public struct ActuationPlan: Equatable, Sendable, CustomStringConvertible {
    public var clamp: ClampMechanism
    public var latency: LatencyMechanism
    public var affinity: Bool
    public var notes: [String]
    public var cgroup2Mount: String?
    public var defaultSliceNanoseconds: UInt64?

    public init(
        clamp: ClampMechanism, latency: LatencyMechanism, affinity: Bool, notes: [String] = [],
        cgroup2Mount: String? = nil, defaultSliceNanoseconds: UInt64? = nil
    ) {
        self.clamp = clamp
        self.latency = latency
        self.affinity = affinity
        self.notes = notes
        self.cgroup2Mount = cgroup2Mount
        self.defaultSliceNanoseconds = defaultSliceNanoseconds
    }

    /// One line for the start-up log: `clamp=uclamp latency=slice affinity=on`.
    public var description: String {
        "clamp=\(clamp.rawValue) latency=\(latency.rawValue) affinity=\(affinity ? "on" : "off")"
    }

    /// The latency hint kind the policy should produce under this plan.
    public var latencyHintKind: LatencyHintKind {
        switch latency {
        case .slice: return .slice
        case .nice: return .nice
        case .none: return .none
        }
    }

    /// A controller with the planned actuators. The `bpfMap` actuator lives
    /// in VCPUFreqBPF (it needs the loaded programs): pass it as
    /// `clampOverride`, or as `clampMirror` to drive it beside the planned
    /// clamp (a `PairedActuator`: what a sched_ext scheduler reads).
    public func makeController(
        cgroupParent: String = "vcpufreq", clampOverride: (any ThreadActuator)? = nil,
        clampMirror: (any ThreadActuator)? = nil, recoveryActuators: [any ThreadActuator] = [],
        recorder: RecordingActuator? = nil, applies: Bool = true, journal: RestoreJournal? = nil
    ) -> ThreadController {
        var clampActuator: (any ThreadActuator)? = clampOverride
        if clampActuator == nil {
            switch clamp {
            case .uclamp: clampActuator = UclampActuator(clampsReadable: true)
            case .cgroup:
                if let cgroup2Mount { clampActuator = CgroupUclampActuator(root: cgroup2Mount, parent: cgroupParent) }
            case .bpfMap, .none: clampActuator = nil
            }
        }
        if let clampMirror {
            clampActuator = clampActuator.map { PairedActuator($0, clampMirror) } ?? clampMirror
        }
        let latencyActuator: (any ThreadActuator)? =
            latency == .none ? nil : LatencyActuator(defaultSliceNanoseconds: defaultSliceNanoseconds)
        return ThreadController(
            clamp: clampActuator, latency: latencyActuator, affinity: affinity ? AffinityActuator() : nil,
            recorder: recorder, applies: applies, journal: journal, recoveryActuators: recoveryActuators)
    }
}
