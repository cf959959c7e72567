import SystemPackage
import VCPUFreqCore

/// Pins a vCPU thread to the host CPUs of the cluster it models
/// (sched_setaffinity), and puts the original mask back.
public final class AffinityActuator: ThreadActuator {
    public let facet = ActuatorFacet.affinity
    public let name = "affinity"

    public init() {}

    public func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) {
        snapshot.affinity = try ThreadScheduling.affinity(of: target.tid)
    }

    /// A hint without affinity means "leave it alone": the original mask.
    public func apply(
        _ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot
    ) throws(Errno) {
        if let cpus = hint.affinity {
            try ThreadScheduling.setAffinity(cpus, of: target.tid)
        } else {
            try restore(target, from: snapshot)
        }
    }

    public func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        guard let original = snapshot.affinity else { return }
        try ThreadScheduling.setAffinity(original, of: target.tid)
    }
}
