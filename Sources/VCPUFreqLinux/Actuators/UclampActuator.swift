import SystemPackage
import VCPUFreqCore

/// Per-thread utilization clamps with sched_setattr(2): the way crosvm's
/// virtual-cpufreq device does it, and the cheapest (one syscall per change).
/// Needs CONFIG_UCLAMP_TASK; without it the kernel answers EOPNOTSUPP and
/// capability detection picks another clamp actuator.
public final class UclampActuator: ThreadActuator {
    public let facet = ActuatorFacet.clamp
    public let name = "uclamp"

    /// Keep the policy and its parameters, change only the clamps, and do
    /// not pass them to children (a vCPU thread should not fork, but if it
    /// does the child is not a vCPU).
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
        guard clampsReadable else { return }
        let attr = try ThreadScheduling.attributes(of: target.tid)
        if attr.hasUtilClamp { snapshot.utilClamp = .init(min: attr.utilMin, max: attr.utilMax) }
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
    }
}
