import SystemPackage
import VCPUFreqCore

/// Per-thread utilization clamps with sched_setattr(2): the way crosvm's
/// virtual-cpufreq device does it, and the cheapest (one syscall per change).
/// Needs CONFIG_UCLAMP_TASK; without it the kernel answers EOPNOTSUPP and
/// capability detection picks another clamp actuator.
public final class UclampActuator: ThreadActuator {
    public let facet = ActuatorFacet.clamp
    public let name = "uclamp"

    /// Keep the policy and its parameters, change only the clamps. The
    /// kernel ignores RESET_ON_FORK next to KEEP_POLICY (it keeps the
    /// thread's current value): `prepare` sets it, so children of a vCPU
    /// thread (not vCPUs) do not inherit the clamps. Seen on Linux 7.3,
    /// where a child of a clamped thread had its util_min.
    public static let applyFlags: SchedFlags = [.keepPolicy, .keepParams, .utilClampMin, .utilClampMax, .resetOnFork]

    /// Whether sched_getattr reports real clamps here (false on kernels
    /// without uclamp: it fills the fields with zeros).
    public let clampsReadable: Bool

    public init(clampsReadable: Bool = true) { self.clampsReadable = clampsReadable }

    /// The struct that sets `min`/`max` and nothing else.
    public static func attributes(utilMin: UInt32, utilMax: UInt32) -> SchedAttr {
        SchedAttr(
            size: UInt32(SchedAttr.sizeWithUtilClamp), policy: .normal, flags: applyFlags,
            utilMin: utilMin, utilMax: utilMax)
    }

    public func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) {
        let attr = try ThreadScheduling.attributes(of: target.tid)
        snapshot.resetOnFork = attr.flags.contains(.resetOnFork)
        guard clampsReadable else { return }
        if attr.hasUtilClamp { snapshot.utilClamp = .init(min: attr.utilMin, max: attr.utilMax) }
    }

    /// RESET_ON_FORK while the thread is ours: a thread it creates starts
    /// unclamped (the kernel's uclamp_fork resets the clamps only then).
    public func prepare(_ target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno) {
        try ThreadScheduling.setResetOnFork(true, of: target.tid)
    }

    public func apply(
        _ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot
    ) throws(Errno) {
        // HostHint holds 0...1024 by contract; clamp anyway so a policy bug
        // cannot make the kernel refuse every request with EINVAL.
        let low = UInt32(min(hint.utilMin, 1024))
        let high = UInt32(min(max(hint.utilMax, hint.utilMin), 1024))
        try ThreadScheduling.setAttributes(Self.attributes(utilMin: low, utilMax: high), of: target.tid)
    }

    public func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        let original = snapshot.utilClamp ?? .unclamped
        try ThreadScheduling.setAttributes(Self.attributes(utilMin: original.min, utilMax: original.max), of: target.tid)
        if let resetOnFork = snapshot.resetOnFork { try ThreadScheduling.setResetOnFork(resetOnFork, of: target.tid) }
    }
}
