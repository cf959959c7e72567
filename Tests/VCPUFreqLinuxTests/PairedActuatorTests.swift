import Foundation
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

/// A clamp actuator that only records what it is asked (the BPF map's place
/// in these tests; the map itself is tested in VCPUFreqBPFTests).
final class LoggingClamp: ThreadActuator {
    let facet = ActuatorFacet.clamp
    let name: String
    var calls: [String] = []
    var failApply: Errno?
    var failRestore: Errno?

    init(name: String) { self.name = name }

    func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) { calls.append("capture") }
    func apply(_ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno) {
        calls.append("apply \(hint.utilMin)")
        if let failApply { throw failApply }
    }
    func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        calls.append("restore")
        if let failRestore { throw failRestore }
    }
}

@Suite struct PairedActuatorTests {
    let target = ThreadTarget(tid: 1, pid: 1, vm: "vm", vcpu: 0, domain: 0)

    @Test("both are driven; the name joins theirs; a failure of one does not stop the other")
    func drivesBoth() throws {
        let first = LoggingClamp(name: "uclamp")
        let second = LoggingClamp(name: "bpf-map")
        let pair = PairedActuator(first, second)
        #expect(pair.name == "uclamp+bpf-map")
        #expect(pair.facet == .clamp)
        var snapshot = ThreadSnapshot()
        try pair.capture(target, into: &snapshot)
        first.failApply = .notPermitted
        #expect(throws: Errno.notPermitted) {
            try pair.apply(HostHint(utilMin: 300), previous: nil, to: target, snapshot: snapshot)
        }
        second.failRestore = .noSuchProcess
        first.failRestore = .invalidArgument
        #expect(throws: Errno.invalidArgument) { try pair.restore(target, from: snapshot) }
        #expect(first.calls == ["capture", "apply 300", "restore"])
        #expect(second.calls == ["capture", "apply 300", "restore"])
    }

    @Test("a change only one of them cares about reaches that one only")
    func needsApply() throws {
        let pair = PairedActuator(LoggingClamp(name: "a"), LoggingClamp(name: "b"))
        let hint = HostHint(utilMin: 100)
        #expect(pair.needsApply(hint, previous: nil))
        #expect(!pair.needsApply(hint, previous: hint))
        var latencyOnly = hint
        latencyOnly.latency = .slice(microseconds: 100)
        #expect(!pair.needsApply(latencyOnly, previous: hint))  // neither logging clamp follows latency
    }

    @Test("a journal record of a pair is restored part by part: ours, a recovery actuator, or fresh kinds")
    func restoringPairs() throws {
        let map = LoggingClamp(name: "bpf-map")
        // This daemon's clamp is uclamp alone; the map comes as a recovery actuator.
        let controller = ThreadController(
            clamp: UclampActuator(), latency: nil, affinity: nil, recoveryActuators: [map])
        let restoring = try #require(controller.restoringActuator(for: .init(facet: .clamp, actuator: "uclamp+bpf-map")))
        #expect(restoring.name == "uclamp+bpf-map")
        let pair = try #require(restoring as? PairedActuator)
        #expect(pair.second === map)
        // A part nobody can undo leaves the record for a daemon that can.
        #expect(controller.restoringActuator(for: .init(facet: .clamp, actuator: "cgroup-uclamp+bpf-map")) == nil)
        let bare = ThreadController(clamp: UclampActuator(), latency: nil, affinity: nil)
        #expect(bare.restoringActuator(for: .init(facet: .clamp, actuator: "uclamp+bpf-map")) == nil)
        // Our own pair is ours.
        let own = PairedActuator(UclampActuator(), map)
        let daemon = ThreadController(clamp: own, latency: nil, affinity: nil)
        #expect(daemon.restoringActuator(for: .init(facet: .clamp, actuator: "uclamp+bpf-map")) === own)
        // A part of our pair restores a single record of it.
        #expect(daemon.restoringActuator(for: .init(facet: .clamp, actuator: "bpf-map")) === map)
    }

    @Test("the plan pairs its clamp with a mirror, or uses the mirror alone when it has none")
    func planPairs() {
        let mirror = LoggingClamp(name: "bpf-map")
        let paired = ActuationPlan(clamp: .uclamp, latency: .none, affinity: false).makeController(clampMirror: mirror)
        #expect(paired.clamp?.name == "uclamp+bpf-map")
        let alone = ActuationPlan(clamp: .none, latency: .none, affinity: false).makeController(clampMirror: mirror)
        #expect(alone.clamp === mirror)
    }
}
