import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

/// Slice, nice and affinity on live threads of this process, checked
/// against what the kernel prints in /proc (not through our own getters).
@Suite(.enabled(if: isRoot, Comment(rawValue: needsRoot)))
struct LiveActuatorTests {
    func target(_ scratch: ScratchThread) -> ThreadTarget {
        ThreadTarget(tid: scratch.tid, pid: getpid(), vm: "test", vcpu: 0, domain: 0)
    }

    func slice(_ tid: Int32) -> UInt64? { ProcFS.parseSchedField("se.slice", in: procSched(tid)) }

    @Test func sliceThenNiceThenNoneThenRestore() throws {
        let scratch = try ScratchThread()
        let tid = scratch.tid
        let originalSlice = try #require(slice(tid))
        let actuator = LatencyActuator(defaultSliceNanoseconds: originalSlice)
        var snapshot = ThreadSnapshot()
        try actuator.capture(target(scratch), into: &snapshot)
        #expect(snapshot.policy == .normal && snapshot.nice == 0)
        #expect(snapshot.runtimeNanoseconds == originalSlice)

        let sliceHint = HostHint(latency: .slice(microseconds: 300))
        try actuator.apply(sliceHint, previous: nil, to: target(scratch), snapshot: snapshot)
        #expect(slice(tid) == 300_000)
        #expect(procNice(tid) == 0)

        let niceHint = HostHint(latency: .nice(-5))
        try actuator.apply(niceHint, previous: sliceHint, to: target(scratch), snapshot: snapshot)
        #expect(slice(tid) == originalSlice)
        #expect(procNice(tid) == -5)

        try actuator.apply(HostHint(latency: .none), previous: niceHint, to: target(scratch), snapshot: snapshot)
        #expect(procNice(tid) == 0)

        try actuator.apply(sliceHint, previous: nil, to: target(scratch), snapshot: snapshot)
        try actuator.restore(target(scratch), from: snapshot)
        #expect(slice(tid) == originalSlice)
        #expect(procNice(tid) == 0)
        #expect(procPolicy(tid) == 0)
    }

    @Test func sliceKeepsANiceTheThreadAlreadyHad() throws {
        let scratch = try ScratchThread()
        try ThreadScheduling.setNice(4, of: scratch.tid)
        let actuator = LatencyActuator()
        var snapshot = ThreadSnapshot()
        try actuator.capture(target(scratch), into: &snapshot)
        try actuator.apply(HostHint(latency: .slice(microseconds: 500)), previous: nil, to: target(scratch), snapshot: snapshot)
        #expect(slice(scratch.tid) == 500_000)
        #expect(procNice(scratch.tid) == 4)
    }

    @Test func realtimeThreadGetsItsPolicyBack() throws {
        let scratch = try ScratchThread()
        try ThreadScheduling.setAttributes(SchedAttr(size: 48, policy: .fifo, priority: 7), of: scratch.tid)
        #expect(procPolicy(scratch.tid) == 1)
        let actuator = LatencyActuator()
        var snapshot = ThreadSnapshot()
        try actuator.capture(target(scratch), into: &snapshot)
        #expect(snapshot.policy == .fifo && snapshot.priority == 7)

        try actuator.apply(HostHint(latency: .slice(microseconds: 300)), previous: nil, to: target(scratch), snapshot: snapshot)
        #expect(procPolicy(scratch.tid) == 0)
        #expect(slice(scratch.tid) == 300_000)
        try actuator.restore(target(scratch), from: snapshot)
        #expect(procPolicy(scratch.tid) == 1)
        // rt_priority is field 40 of stat; sched_getattr agrees.
        #expect(try ThreadScheduling.attributes(of: scratch.tid).priority == 7)
    }

    @Test func affinityPinsAndRestores() throws {
        let scratch = try ScratchThread()
        let original = try #require(procAllowedCPUs(scratch.tid))
        let actuator = AffinityActuator()
        var snapshot = ThreadSnapshot()
        try actuator.capture(target(scratch), into: &snapshot)
        #expect(snapshot.affinity?.description == original)

        let pin = try #require(onlineCPUs.last)
        try actuator.apply(HostHint(affinity: CPUList([pin])), previous: nil, to: target(scratch), snapshot: snapshot)
        #expect(procAllowedCPUs(scratch.tid) == "\(pin)")
        // A hint without affinity means the original mask.
        try actuator.apply(HostHint(), previous: HostHint(affinity: CPUList([pin])), to: target(scratch), snapshot: snapshot)
        #expect(procAllowedCPUs(scratch.tid) == original)
        try actuator.apply(HostHint(affinity: CPUList([pin])), previous: nil, to: target(scratch), snapshot: snapshot)
        try actuator.restore(target(scratch), from: snapshot)
        #expect(procAllowedCPUs(scratch.tid) == original)
    }

    @Test func goneThreadIsESRCH() throws {
        let scratch = try ScratchThread()
        let gone = target(scratch)
        var snapshot = ThreadSnapshot()
        try LatencyActuator().capture(gone, into: &snapshot)
        scratch.stop()
        #expect(throws: Errno.noSuchProcess) {
            try LatencyActuator().apply(HostHint(latency: .slice(microseconds: 300)), previous: nil, to: gone, snapshot: snapshot)
        }
        #expect(throws: Errno.noSuchProcess) {
            try AffinityActuator().apply(HostHint(affinity: CPUList([0])), previous: nil, to: gone, snapshot: snapshot)
        }
    }
}
