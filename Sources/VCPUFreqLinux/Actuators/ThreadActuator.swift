import SystemPackage
import VCPUFreqCore

/// The parts of a vCPU thread's scheduling that vcpufreq changes, each
/// owned by one actuator.
public enum ActuatorFacet: String, Codable, CaseIterable, Sendable {
    /// util_min/util_max (uclamp, cgroup uclamp, a BPF map).
    case clamp
    /// EEVDF slice or nice.
    case latency
    /// CPU affinity.
    case affinity

    /// Whether this facet's part of the hint differs. `previous` nil means
    /// nothing was applied yet: the thread has its original attributes, which
    /// is what the neutral hint stands for.
    public func changed(from previous: HostHint?, to new: HostHint) -> Bool {
        let old = previous ?? .neutral
        switch self {
        case .clamp: return old.utilMin != new.utilMin || old.utilMax != new.utilMax
        case .latency: return old.latency != new.latency
        case .affinity: return old.affinity != new.affinity
        }
    }
}

/// A vCPU thread as the actuators see it.
public struct ThreadTarget: Hashable, Sendable, Codable {
    /// Kernel TID of the vCPU thread.
    public var tid: Int32
    /// The VMM process owning it (its thread group id).
    public var pid: Int32
    /// VM name (the profile's name).
    public var vm: String
    public var vcpu: Int
    /// Performance domain of the vCPU (cgroup uclamp groups threads by it).
    public var domain: Int

    public init(tid: Int32, pid: Int32, vm: String, vcpu: Int, domain: Int) {
        self.tid = tid
        self.pid = pid
        self.vm = vm
        self.vcpu = vcpu
        self.domain = domain
    }
}

/// One facet's actuator. Implementations are classes (state such as the
/// cgroup actuator's groups) and are called from one thread at a time.
/// Calls go through a class-bound existential: an indirect call, no boxing
/// or allocation.
public protocol ThreadActuator: AnyObject {
    var facet: ActuatorFacet { get }
    /// Short name for logs, the journal and capability reports
    /// (`uclamp`, `cgroup-uclamp`, `latency`, `affinity`).
    var name: String { get }
    /// Reads this facet's original attributes into `snapshot`.
    func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno)
    /// Whether `apply` must run for the change from `previous` to `new`.
    /// Default: this facet's part of the hint changed. An actuator whose
    /// output carries more than its facet (the BPF-map actuator writes the
    /// latency flag beside the clamps) widens it.
    func needsApply(_ new: HostHint, previous: HostHint?) -> Bool
    /// Anything to set up once per thread after capture (the cgroup
    /// actuator moves the thread into its domain group). Default: nothing.
    func prepare(_ target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno)
    /// Applies this facet's part of `hint`. Called only when that part
    /// changed from `previous` (nil = the original attributes are in place).
    func apply(_ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno)
    /// Puts this facet's original attributes back.
    func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno)
}

extension ThreadActuator {
    public func needsApply(_ new: HostHint, previous: HostHint?) -> Bool { facet.changed(from: previous, to: new) }

    public func prepare(_ target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno) {}
}
