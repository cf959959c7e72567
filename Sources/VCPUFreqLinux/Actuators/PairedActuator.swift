import SystemPackage
import VCPUFreqCore

/// Two actuators of one facet driven as one: the daemon's clamp (uclamp or
/// cgroup uclamp) and the BPF util-hint map a sched_ext scheduler reads
/// (`serve --scheduler sched-ext`): the kernel enforces the first, the
/// scheduler places by the second, and when the scheduler is ejected the
/// first goes on alone. Its name joins theirs (`uclamp+bpf-map`), which is
/// what the journal records, so a restarted daemon restores both.
public final class PairedActuator: ThreadActuator {
    public let first: any ThreadActuator
    public let second: any ThreadActuator
    public var facet: ActuatorFacet { first.facet }
    public let name: String

    /// The separator of the parts of a paired actuator's name.
    public static let separator: Character = "+"

    public init(_ first: any ThreadActuator, _ second: any ThreadActuator) {
        precondition(first.facet == second.facet, "paired actuators must share a facet")
        self.first = first
        self.second = second
        name = "\(first.name)\(Self.separator)\(second.name)"
    }

    public func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) {
        try first.capture(target, into: &snapshot)
        try second.capture(target, into: &snapshot)
    }

    public func needsApply(_ new: HostHint, previous: HostHint?) -> Bool {
        first.needsApply(new, previous: previous) || second.needsApply(new, previous: previous)
    }

    public func prepare(_ target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno) {
        try first.prepare(target, snapshot: snapshot)
        try second.prepare(target, snapshot: snapshot)
    }

    /// Both are tried; the first failure is thrown.
    public func apply(_ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno) {
        var failure: Errno?
        for actuator in [first, second] where actuator.needsApply(hint, previous: previous) {
            do { try actuator.apply(hint, previous: previous, to: target, snapshot: snapshot) } catch {
                if failure == nil || failure == .noSuchProcess { failure = error }
            }
        }
        if let failure { throw failure }
    }

    /// Both are restored, the second first (undoing in reverse); the first failure is thrown.
    public func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        var failure: Errno?
        for actuator in [second, first] {
            do { try actuator.restore(target, from: snapshot) } catch {
                if failure == nil || failure == .noSuchProcess { failure = error }
            }
        }
        if let failure { throw failure }
    }
}
