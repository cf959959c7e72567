import SystemPackage
import VCPUFreqCore

/// Latency hints: an EEVDF custom slice (sched_runtime of a SCHED_NORMAL
/// thread, Linux 6.12+; a shorter slice means earlier preemption of
/// whatever runs when the vCPU wakes) or a nice value; `.none` puts the
/// original attributes back.
public final class LatencyActuator: ThreadActuator {
    public let facet = ActuatorFacet.latency
    public let name = "latency"

    /// The slice the kernel reports for a thread nobody set a slice on
    /// (sched_getattr returns the current slice, custom or not). A captured
    /// runtime equal to it is restored as 0 — "default slice" — so the thread
    /// keeps following the system's base slice. nil: restore the raw value.
    public let defaultSliceNanoseconds: UInt64?

    public init(defaultSliceNanoseconds: UInt64? = nil) {
        self.defaultSliceNanoseconds = defaultSliceNanoseconds
    }

    public func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) {
        var attr = try ThreadScheduling.attributes(of: target.tid)
        if !attr.policy.isFair {
            // sched_getattr reports nice only for fair policies; an RT thread
            // keeps its nice for when it returns to SCHED_NORMAL.
            attr.nice = try ThreadScheduling.nice(of: target.tid)
        }
        snapshot.scheduling = attr
    }

    /// The struct for a custom slice of `microseconds`: SCHED_NORMAL, the
    /// original nice, runtime in ns (UInt32 µs × 1000 cannot overflow
    /// UInt64; the kernel clamps to 0.1...100 ms), and RESET_ON_FORK: a
    /// thread the vCPU thread creates gets neither the slice nor the clamps
    /// (this call names the policy, so it sets the flag; without it, it
    /// would clear the one the clamp facet set). Restore puts the original back.
    public static func sliceAttributes(microseconds: UInt32, original: SchedAttr?) -> SchedAttr {
        let nice = original?.nice ?? 0
        return SchedAttr(
            size: UInt32(SchedAttr.sizeWithoutUtilClamp), policy: .normal, flags: .resetOnFork, nice: nice,
            runtimeNanoseconds: UInt64(microseconds) * 1000)
    }

    public func apply(
        _ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot
    ) throws(Errno) {
        switch hint.latency {
        case .none:
            try restore(target, from: snapshot, previous: previous?.latency ?? .none)
        case .slice(let microseconds):
            // Also undoes a nice set before: the struct carries the original nice.
            try ThreadScheduling.setAttributes(
                Self.sliceAttributes(microseconds: microseconds, original: snapshot.scheduling), of: target.tid)
        case .nice(let value):
            if case .slice = previous?.latency { try restoreScheduling(target, snapshot, keepResetOnFork: true) }
            try ThreadScheduling.setNice(Int32(value), of: target.tid)
        }
    }

    public func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        try restoreScheduling(target, snapshot)
        if let original = snapshot.scheduling, !original.policy.isFair {
            try ThreadScheduling.setNice(original.nice, of: target.tid)
        }
    }

    /// Undoes only what `previous` changed (one syscall).
    private func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot, previous: LatencyHint) throws(Errno) {
        switch previous {
        case .none: return
        case .slice: try restoreScheduling(target, snapshot, keepResetOnFork: true)
        case .nice:
            guard let original = snapshot.scheduling else { return }
            try ThreadScheduling.setNice(original.nice, of: target.tid)
        }
    }

    /// The original policy and parameters, with a default slice written as 0.
    public func restoreAttributes(_ original: SchedAttr) -> SchedAttr {
        var attr = original
        attr.size = UInt32(SchedAttr.sizeWithoutUtilClamp)  // leave the clamps to the clamp facet
        attr.flags = original.flags.intersection(.resetOnFork)
        if original.policy.isFair, let defaultSliceNanoseconds, original.runtimeNanoseconds == defaultSliceNanoseconds {
            attr.runtimeNanoseconds = 0
        }
        if !original.policy.isFair && original.policy != .deadline {
            attr.runtimeNanoseconds = 0
            attr.nice = 0
        }
        return attr
    }

    /// `keepResetOnFork`: the thread stays ours (a hint back to none), so
    /// RESET_ON_FORK stays set; the original flag comes back with `restore`.
    private func restoreScheduling(
        _ target: ThreadTarget, _ snapshot: ThreadSnapshot, keepResetOnFork: Bool = false
    ) throws(Errno) {
        guard let original = snapshot.scheduling else { return }
        var attr = restoreAttributes(original)
        if keepResetOnFork { attr.flags.insert(.resetOnFork) }
        try ThreadScheduling.setAttributes(attr, of: target.tid)
    }
}
