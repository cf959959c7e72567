import SystemPackage
import VCPUFreqCore
import VCPUFreqLinux

/// The clamp actuator of hosts whose scheduler is a BPF program: writes each
/// vCPU thread's hint into the pinned util-hint map (docs/bpf.md) for a
/// sched_ext scheduler to consume, the way a guest's util_guest would reach
/// a host scheduler. Nothing in the kernel enforces the entry, so the plan
/// picks this actuator only when no real clamp (uclamp, cgroup uclamp) exists
/// or when the operator asks for it (`--clamp bpf-map`).
///
/// A map entry has no original to capture: a thread without an entry is
/// "no hint". `restore` deletes the entry.
public final class BPFMapActuator: ThreadActuator {
    public let facet = ActuatorFacet.clamp
    public let name = "bpf-map"
    /// The loaded programs whose util-hint map this actuator writes.
    public let monitor: VCPUThreadMonitor

    public init(monitor: VCPUThreadMonitor) {
        self.monitor = monitor
    }

    /// Nothing to read: a thread has no util-hint entry until the first apply.
    public func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) {}

    /// The entry carries the latency flag and slice beside the clamps, so a
    /// latency-only change rewrites it too.
    public func needsApply(_ new: HostHint, previous: HostHint?) -> Bool {
        ActuatorFacet.clamp.changed(from: previous, to: new) || ActuatorFacet.latency.changed(from: previous, to: new)
    }

    /// One map update (plus the lookup that numbers it); no allocation.
    /// - Throws: the map's errno (E2BIG: the map is full), EINVAL for a
    ///   non-positive TID, ENODEV when the monitor is not running.
    public func apply(
        _ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot
    ) throws(Errno) {
        let result = monitor.writeHint(tid: target.tid, UtilHint(hint))
        guard result.errno == 0 else { throw Errno(rawValue: result.errno) }
    }

    /// Deletes the thread's entry (none is fine: nothing was applied, or the
    /// scheduler side removed it).
    public func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        let code = monitor.deleteHint(tid: target.tid)
        guard code == 0 else { throw Errno(rawValue: code) }
    }

    /// The `HostCapabilities.bpfMap` verdict for a monitor in `status`:
    /// available only while the programs are loaded and the map is pinned,
    /// since an unpinned map is one no scheduler can find.
    public static func capability(of status: MonitorStatus) -> HostCapabilities.Status {
        switch status.state {
        case .notStarted: return .unavailable("the BPF programs are not loaded")
        case .stopped: return .unavailable("the BPF programs were unloaded")
        case .failed(let error): return .unavailable("\(error)")
        case .running:
            guard let path = status.utilHintPinPath else {
                let why = status.missing.first { $0.target.hasPrefix("pin ") }?.reason ?? "pinning is switched off"
                return .unavailable("the util-hint map is not pinned: \(why)")
            }
            return .available("util-hint map pinned at \(path) for a sched_ext scheduler to read")
        }
    }
}
