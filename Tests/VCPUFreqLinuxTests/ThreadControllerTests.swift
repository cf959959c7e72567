import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

@Suite struct ThreadControllerTests {
    /// uclamp + latency + affinity, with the setters answered by the hook so
    /// this runs without root and without uclamp; getters hit the kernel.
    func fakedSetters() -> SyscallHook {
        let hook = SyscallHook()
        for name in ["sched_setattr", "setpriority", "sched_setaffinity"] { hook.on(name, .succeed()) }
        return hook
    }

    func controller(recorder: RecordingActuator? = nil, applies: Bool = true) -> ThreadController {
        ThreadController(
            clamp: UclampActuator(clampsReadable: false), latency: LatencyActuator(), affinity: AffinityActuator(),
            recorder: recorder, applies: applies)
    }

    var setterNames: Set<String> { ["sched_setattr", "setpriority", "sched_setaffinity"] }

    @Test func attachCapturesEveryFacet() throws {
        let scratch = try ScratchThread()
        let thread = try controller().attach(tid: scratch.tid, vm: "phone", vcpu: 3, domain: 1)
        #expect(thread.target == ThreadTarget(tid: scratch.tid, pid: getpid(), vm: "phone", vcpu: 3, domain: 1))
        #expect(thread.facets.map(\.facet) == [.clamp, .latency, .affinity])
        #expect(thread.facets.map(\.actuator) == ["uclamp", "latency", "affinity"])
        #expect(thread.snapshot.scheduling?.policy == .normal)
        #expect(thread.snapshot.affinity?.description == procAllowedCPUs(scratch.tid))
        #expect(thread.startTime == ProcFS().startTime(ofThread: scratch.tid, inProcess: getpid()))
    }

    @Test func attachOfAMissingThreadIsTyped() {
        #expect {
            try controller().attach(tid: Int32.max - 1, vm: "x", vcpu: 0, domain: 0)
        } throws: { error in
            (error as? ThreadControlError)?.threadGone == true
        }
    }

    @Test func onlyChangedFacetsMakeSyscalls() throws {
        let scratch = try ScratchThread()
        let control = controller()
        let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        let hook = fakedSetters()
        let first = HostHint(utilMin: 512, utilMax: 1024, latency: .slice(microseconds: 300), affinity: CPUList([0]))
        var sameAsFirst = first
        sameAsFirst.affinity = CPUList([0])
        var onlyClamp = first
        onlyClamp.utilMin = 600
        var onlyAffinity = onlyClamp
        onlyAffinity.affinity = CPUList([0, 1])
        var setters: [[String]] = []
        try SyscallHook.withHook(hook) {
            for (new, previous) in [(first, nil), (sameAsFirst, first), (onlyClamp, sameAsFirst), (onlyAffinity, onlyClamp)]
                as [(HostHint, HostHint?)]
            {
                hook.reset()
                try control.apply(new, previous: previous, to: thread)
                setters.append(hook.calls.map(\.name).filter { setterNames.contains($0) })
            }
        }
        #expect(setters == [
            ["sched_setattr", "sched_setattr", "sched_setaffinity"],  // clamp, slice, pin
            [],  // nothing changed: no syscall at all
            ["sched_setattr"],
            ["sched_setaffinity"],
        ])
        #expect(control.clampCounters.applied == 2 && control.clampCounters.unchanged == 2)
        #expect(control.latencyCounters.applied == 1 && control.latencyCounters.unchanged == 3)
        #expect(control.affinityCounters.applied == 2 && control.affinityCounters.unchanged == 2)
    }

    @Test func neutralHintFirstIsNoChange() throws {
        let scratch = try ScratchThread()
        let control = controller()
        let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        let hook = fakedSetters()
        try SyscallHook.withHook(hook) { try control.apply(.neutral, previous: nil, to: thread) }
        #expect(hook.calls.isEmpty)
    }

    @Test func oneFailingFacetDoesNotStopTheOthers() throws {
        let scratch = try ScratchThread()
        let control = controller()
        let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        let hook = SyscallHook()
        hook.on("sched_setattr", times: 1, .fail(.notSupported))  // the clamp (first facet) fails
        hook.on("sched_setattr", .succeed())
        hook.on("sched_setaffinity", .succeed())
        let hint = HostHint(utilMin: 100, latency: .slice(microseconds: 300), affinity: CPUList([0]))
        #expect {
            try SyscallHook.withHook(hook) { try control.apply(hint, previous: nil, to: thread) }
        } throws: { error in
            guard let error = error as? ThreadControlError else { return false }
            return error.operation == .apply && !error.threadGone
                && error.failures == [.init(facet: .clamp, actuator: "uclamp", errno: .notSupported)]
        }
        #expect(control.clampCounters.failed == 1)
        #expect(control.latencyCounters.applied == 1)
        #expect(control.affinityCounters.applied == 1)
    }

    @Test func vanishedThreadIsCountedQuietly() throws {
        let scratch = try ScratchThread()
        let control = ThreadController(clamp: nil, latency: LatencyActuator(), affinity: AffinityActuator())
        let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        scratch.stop()
        let hint = HostHint(latency: .nice(3), affinity: CPUList([0]))
        #expect {
            try control.apply(hint, previous: nil, to: thread)
        } throws: { error in
            (error as? ThreadControlError)?.threadGone == true
        }
        #expect(control.latencyCounters.threadGone == 1 && control.latencyCounters.failed == 0)
        #expect(control.affinityCounters.threadGone == 1 && control.affinityCounters.failed == 0)
        // Restoring a thread that is gone is not an error.
        try control.restore(thread)
        #expect(control.latencyCounters.threadGone == 2)
    }

    @Test func dryRunRecordsButNeverChangesAThread() throws {
        let scratch = try ScratchThread()
        let directory = temporaryDirectory("dry")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let recorder = try RecordingActuator(path: directory + "/actions.jsonl", clock: { 5 })
        let control = controller(recorder: recorder, applies: false)
        let hook = SyscallHook()
        try SyscallHook.withHook(hook) {
            let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 1, domain: 0)
            try control.apply(HostHint(utilMin: 700, latency: .nice(-3)), previous: nil, to: thread)
            try control.restore(thread)
        }
        #expect(hook.calls.filter { setterNames.contains($0.name) }.isEmpty)
        let lines = try String(contentsOfFile: directory + "/actions.jsonl", encoding: .utf8).split(separator: "\n")
        let actions = try lines.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["action"] as? String
        }
        #expect(actions == ["capture", "apply", "restore"])
    }
}
