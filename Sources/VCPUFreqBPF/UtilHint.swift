import VCPUFreqCore

/// One entry of the pinned util-hint map (`struct vcpufreq_util_hint`): the
/// "util_guest"-like hint for one vCPU thread that a host BPF scheduler
/// (sched_ext) can consume. docs/bpf.md documents the layout.
public struct UtilHint: Equatable, Sendable {
    /// Flags of the hint (the VCPUFREQ_HINT_* constants).
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// The guest says its work is latency-sensitive.
        /// The corresponding C constant is `VCPUFREQ_HINT_LATENCY_SENSITIVE`.
        public static let latencySensitive = Flags(rawValue: 1 << 0)
        /// The guest asked for a short boost.
        /// The corresponding C constant is `VCPUFREQ_HINT_BOOST`.
        public static let boost = Flags(rawValue: 1 << 1)
    }

    /// Utilization is 0...1024 (SCHED_CAPACITY_SCALE); larger values, which
    /// only a bug upstream could produce, are clamped so a consumer never sees them.
    public static let maxUtilization: UInt16 = 1024

    /// Lowest utilization the scheduler should assume, 0...1024, never above `utilMax`.
    public var utilMin: UInt16
    /// Highest utilization, 0...1024 (1024 = unclamped).
    public var utilMax: UInt16
    public var flags: Flags
    /// Requested slice, µs; 0 = no preference.
    public var sliceMicroseconds: UInt32
    /// Incremented (wrapping) by every update of this entry; the monitor sets
    /// it, a value passed in is ignored by `VCPUThreadMonitor.setHint`.
    public var sequence: UInt32

    /// Clamps both utilizations to 0...1024 and `utilMin` to `utilMax` (the
    /// kernel's uclamp rule: a minimum above the maximum is the maximum).
    public init(
        utilMin: UInt16, utilMax: UInt16 = UtilHint.maxUtilization, flags: Flags = [],
        sliceMicroseconds: UInt32 = 0, sequence: UInt32 = 0
    ) {
        let maximum = min(utilMax, Self.maxUtilization)
        self.utilMin = min(utilMin, maximum)
        self.utilMax = maximum
        self.flags = flags
        self.sliceMicroseconds = sliceMicroseconds
        self.sequence = sequence
    }

    /// The map form of a policy decision. The policy gives a vCPU a latency
    /// hint only while its guest says its work is latency-sensitive (and the
    /// operator allows a hint), so any latency hint — a slice or a nice, of
    /// whatever strength the operator chose — sets the latency flag; a slice
    /// is also carried as `sliceMicroseconds`.
    public init(_ hint: HostHint, boost: Bool = false) {
        var flags: Flags = boost ? [.boost] : []
        var slice: UInt32 = 0
        switch hint.latency {
        case .none:
            break
        case .slice(let microseconds):
            slice = microseconds
            flags.insert(.latencySensitive)
        case .nice:
            flags.insert(.latencySensitive)
        }
        self.init(utilMin: hint.utilMin, utilMax: hint.utilMax, flags: flags, sliceMicroseconds: slice)
    }
}
