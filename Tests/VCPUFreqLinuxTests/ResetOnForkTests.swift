import Foundation
import Glibc
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

/// SCHED_RESET_ON_FORK on a vCPU thread while it is ours, read back with
/// sched_getscheduler. On Linux 7.3 the kernel matrix (scripts/test-kernels,
/// facet uclamp) found a child of a clamped vCPU thread with its util_min:
/// the clamp writes carried RESET_ON_FORK next to KEEP_POLICY, which the
/// kernel ignores, and a slice hint cleared the flag. Neither needs uclamp,
/// so this runs here.
@Suite(.enabled(if: isRoot, Comment(rawValue: needsRoot)))
struct ResetOnForkTests {
    func target(_ scratch: ScratchThread) -> ThreadTarget {
        ThreadTarget(tid: scratch.tid, pid: getpid(), vm: "test", vcpu: 0, domain: 0)
    }

    /// The kernel rule the clamp actuator first missed.
    @Test func theKernelIgnoresResetOnForkNextToKeepPolicy() throws {
        let scratch = try ScratchThread()
        try ThreadScheduling.setAttributes(
            SchedAttr(size: UInt32(SchedAttr.sizeWithoutUtilClamp), flags: [.keepPolicy, .keepParams, .resetOnFork]),
            of: scratch.tid)
        #expect(kernelResetOnFork(scratch.tid) == false)
    }

    @Test func setResetOnForkChangesOnlyTheFlag() throws {
        let scratch = try ScratchThread()
        try ThreadScheduling.setNice(3, of: scratch.tid)
        let before = procSched(scratch.tid)
        try ThreadScheduling.setResetOnFork(true, of: scratch.tid)
        #expect(kernelResetOnFork(scratch.tid) == true)
        #expect(procNice(scratch.tid) == 3)
        #expect(ProcFS.parseSchedField("se.slice", in: procSched(scratch.tid)) == ProcFS.parseSchedField("se.slice", in: before))
        try ThreadScheduling.setResetOnFork(false, of: scratch.tid)
        #expect(kernelResetOnFork(scratch.tid) == false)
        #expect(procNice(scratch.tid) == 3)
    }

    /// prepare sets it; the original comes back at restore (here through
    /// setResetOnFork: restoring the clamps needs uclamp, which this host lacks).
    @Test func theClampFacetSetsItAtAttachAndRecordsTheOriginal() throws {
        let scratch = try ScratchThread()
        let actuator = UclampActuator(clampsReadable: false)
        var snapshot = ThreadSnapshot()
        try actuator.capture(target(scratch), into: &snapshot)
        #expect(snapshot.resetOnFork == false)
        try actuator.prepare(target(scratch), snapshot: snapshot)
        #expect(kernelResetOnFork(scratch.tid) == true)
        let journal = try JSONDecoder().decode(ThreadSnapshot.self, from: try JSONEncoder().encode(snapshot))
        #expect(journal.resetOnFork == false, "the journal keeps the original for crash recovery")
    }

    /// A slice hint, and a hint back to none, keep the flag the clamp facet
    /// set; only restore puts the original back.
    @Test func latencyHintsKeepItUntilRestore() throws {
        let scratch = try ScratchThread()
        let actuator = LatencyActuator()
        var snapshot = ThreadSnapshot()
        try actuator.capture(target(scratch), into: &snapshot)
        try UclampActuator(clampsReadable: false).prepare(target(scratch), snapshot: snapshot)
        let slice = HostHint(latency: .slice(microseconds: 300))
        try actuator.apply(slice, previous: nil, to: target(scratch), snapshot: snapshot)
        #expect(kernelResetOnFork(scratch.tid) == true, "a slice hint cleared RESET_ON_FORK")
        try actuator.apply(HostHint(latency: .none), previous: slice, to: target(scratch), snapshot: snapshot)
        #expect(kernelResetOnFork(scratch.tid) == true, "a hint back to none cleared RESET_ON_FORK")
        try actuator.apply(slice, previous: nil, to: target(scratch), snapshot: snapshot)
        try actuator.restore(target(scratch), from: snapshot)
        #expect(kernelResetOnFork(scratch.tid) == false)
    }
}
