import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

@Suite struct RestoreJournalTests {
    func slice(_ tid: Int32) -> UInt64? { ProcFS.parseSchedField("se.slice", in: procSched(tid)) }

    func makeController(_ journal: RestoreJournal, defaultSlice: UInt64?) -> ThreadController {
        ThreadController(
            clamp: nil, latency: LatencyActuator(defaultSliceNanoseconds: defaultSlice), affinity: AffinityActuator(),
            journal: journal)
    }

    /// The crash test of the brief: change live threads, drop the controller
    /// without restoring (SIGKILL), recover in a new one, and read the
    /// kernel's own view of the threads.
    @Test(.enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func recoveryRestoresLiveThreadsAfterACrash() throws {
        let state = temporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let sliced = try ScratchThread()
        let niced = try ScratchThread()
        let originalSlice = try #require(slice(sliced.tid))
        let originalCPUs = try #require(procAllowedCPUs(sliced.tid))
        let pin = try #require(onlineCPUs.last)
        do {
            let crashed = makeController(try RestoreJournal(stateDirectory: state), defaultSlice: originalSlice)
            let a = try crashed.attach(tid: sliced.tid, vm: "phone", vcpu: 0, domain: 0)
            let b = try crashed.attach(tid: niced.tid, vm: "phone", vcpu: 1, domain: 0)
            try crashed.apply(HostHint(latency: .slice(microseconds: 300), affinity: CPUList([pin])), previous: nil, to: a)
            try crashed.apply(HostHint(latency: .nice(-5), affinity: CPUList([pin])), previous: nil, to: b)
            // The changes are real before the "crash".
            #expect(slice(sliced.tid) == 300_000)
            #expect(procNice(niced.tid) == -5)
            #expect(procAllowedCPUs(sliced.tid) == "\(pin)")
        }  // controller gone, nothing restored

        let journal = try RestoreJournal(stateDirectory: state)
        #expect(journal.records().records.map(\.thread.target.tid) == [sliced.tid, niced.tid].sorted())
        let report = journal.recover(with: makeController(journal, defaultSlice: originalSlice))
        #expect(Set(report.restored.map(\.tid)) == [sliced.tid, niced.tid])
        #expect(report.gone.isEmpty && report.reused.isEmpty && report.failed.isEmpty && report.unreadable.isEmpty)

        #expect(slice(sliced.tid) == originalSlice)
        #expect(try ThreadScheduling.attributes(of: sliced.tid).policy == .normal)
        #expect(procNice(niced.tid) == 0)
        #expect(try ThreadScheduling.nice(of: niced.tid) == 0)
        #expect(procAllowedCPUs(sliced.tid) == originalCPUs)
        #expect(procAllowedCPUs(niced.tid) == originalCPUs)
        #expect(try ThreadScheduling.affinity(of: niced.tid).description == originalCPUs)
        #expect(journal.records().records.isEmpty)
    }

    /// A TID the kernel gave to another thread must never be touched: the
    /// record's start time differs from the live thread's.
    @Test(.enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func reusedTIDIsLeftAlone() throws {
        let state = temporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let scratch = try ScratchThread()
        let journal = try RestoreJournal(stateDirectory: state)
        let control = makeController(journal, defaultSlice: nil)
        var thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        try control.apply(HostHint(latency: .slice(microseconds: 400)), previous: nil, to: thread)
        // Forge the record as if an earlier thread with this TID had been attached.
        thread.startTime -= 1
        thread.snapshot.scheduling?.nice = 7
        try journal.record(thread)

        let report = journal.recover(with: makeController(journal, defaultSlice: nil))
        #expect(report.reused.map(\.tid) == [scratch.tid])
        #expect(report.restored.isEmpty)
        #expect(slice(scratch.tid) == 400_000)  // untouched
        #expect(procNice(scratch.tid) == 0)
        #expect(journal.records().records.isEmpty)  // cleared all the same
    }

    @Test func goneThreadsAndUnreadableFilesAreClearedWithoutTouchingAnything() throws {
        let state = temporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let journal = try RestoreJournal(stateDirectory: state)
        let scratch = try ScratchThread()
        let control = makeController(journal, defaultSlice: nil)
        let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        scratch.stop()
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: journal.directory + "/thread-99.json"))
        try Data("half".utf8).write(to: URL(fileURLWithPath: journal.directory + "/.thread-98.json.tmp"))
        var otherVersion = RestoreJournal.Record(version: 99, thread: thread)
        otherVersion.thread.target.tid = 97
        try JSONEncoder().encode(otherVersion).write(to: URL(fileURLWithPath: journal.directory + "/thread-97.json"))

        let hook = SyscallHook()
        let report = SyscallHook.withHook(hook) { journal.recover(with: makeController(journal, defaultSlice: nil)) }
        #expect(report.gone.map(\.tid) == [thread.target.tid])
        #expect(report.unreadable.sorted() == [".thread-98.json.tmp", "thread-97.json", "thread-99.json"])
        #expect(hook.calls.filter { $0.name.hasPrefix("sched_set") || $0.name == "setpriority" }.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: journal.directory).isEmpty)
    }

    @Test func recordIsWrittenDurablyAndReadBack() throws {
        let state = temporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let journal = try RestoreJournal(stateDirectory: state)
        let thread = AttachedThread(
            target: ThreadTarget(tid: 12345, pid: 12000, vm: "laptop \"big\"", vcpu: 5, domain: 1), startTime: 987_654,
            snapshot: ThreadSnapshot(
                scheduling: SchedAttr(size: 56, policy: .fifo, flags: .resetOnFork, nice: -2, priority: 9,
                                      runtimeNanoseconds: 1_400_000),
                utilClamp: .init(min: 0, max: 1024), affinity: CPUList([0, 1, 2, 3, 8]),
                cgroup: .init(unifiedPath: "/machine.slice/vmm", v1CPUPath: "/")),
            facets: [.init(facet: .latency, actuator: "latency"), .init(facet: .clamp, actuator: "cgroup-uclamp")])
        let hook = SyscallHook()
        try SyscallHook.withHook(hook) { try journal.record(thread) }
        // temp file fsynced, renamed into place, directory fsynced.
        #expect(hook.calls.map(\.name).filter { ["fsync", "rename"].contains($0) } == ["fsync", "rename", "fsync"])
        let stored = try String(contentsOfFile: journal.directory + "/thread-12345.json", encoding: .utf8)
        #expect(stored.contains(#""affinity":"0-3,8""#))
        #expect(journal.records().records == [RestoreJournal.Record(version: RestoreJournal.version, thread: thread)])
        var info = stat()
        #expect(stat(journal.directory + "/thread-12345.json", &info) == 0 && info.st_mode & 0o777 == 0o600)
        journal.remove(thread)
        #expect(journal.records().records.isEmpty)
    }

    @Test func failedFsyncLeavesNoRecord() throws {
        let state = temporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let journal = try RestoreJournal(stateDirectory: state)
        let thread = AttachedThread(
            target: ThreadTarget(tid: 5, pid: 5, vm: "v", vcpu: 0, domain: 0), startTime: 1, snapshot: ThreadSnapshot(),
            facets: [])
        let hook = SyscallHook()
        hook.on("fsync", times: 1, .fail(.ioError))
        #expect(throws: Errno.ioError) { try SyscallHook.withHook(hook) { try journal.record(thread) } }
        #expect(try FileManager.default.contentsOfDirectory(atPath: journal.directory).isEmpty)
    }

    @Test(.enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func attachJournalsBeforeChangingAndRestoreRemoves() throws {
        let state = temporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let journal = try RestoreJournal(stateDirectory: state)
        let scratch = try ScratchThread()
        let control = makeController(journal, defaultSlice: nil)
        let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        #expect(journal.records().records.map(\.thread) == [thread])
        try control.apply(HostHint(latency: .nice(1)), previous: nil, to: thread)
        try control.restore(thread)
        #expect(journal.records().records.isEmpty)
        #expect(procNice(scratch.tid) == 0)
    }

    /// A restore that fails (here: the kernel refuses the slice change once)
    /// keeps the thread's record, so the host is not left with the hint for
    /// good: the next start's recovery restores it and only then removes it.
    @Test(.enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func aFailedRestoreKeepsTheRecordForTheNextStart() throws {
        let state = temporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let scratch = try ScratchThread()
        let originalSlice = try #require(slice(scratch.tid))
        let journal = try RestoreJournal(stateDirectory: state)
        let control = makeController(journal, defaultSlice: originalSlice)
        let thread = try control.attach(tid: scratch.tid, vm: "phone", vcpu: 0, domain: 0)
        try control.apply(HostHint(latency: .slice(microseconds: 300)), previous: nil, to: thread)
        #expect(slice(scratch.tid) == 300_000)

        let hook = SyscallHook()
        hook.on("sched_setattr", times: 1, .fail(.notPermitted))
        #expect(throws: ThreadControlError.self) { try SyscallHook.withHook(hook) { try control.restore(thread) } }
        #expect(slice(scratch.tid) == 300_000)  // the refusal was real: the hint is still there
        #expect(journal.records().records.map(\.thread) == [thread])

        // A recovery that fails again keeps it too; one that succeeds removes it.
        let refusing = SyscallHook()
        refusing.on("sched_setattr", times: 1, .fail(.notPermitted))
        let failed = SyscallHook.withHook(refusing) { journal.recover(with: makeController(journal, defaultSlice: originalSlice)) }
        #expect(failed.failed.map(\.tid) == [scratch.tid] && failed.restored.isEmpty)
        #expect(journal.records().records.count == 1)
        let report = journal.recover(with: makeController(journal, defaultSlice: originalSlice))
        #expect(report.restored.map(\.tid) == [scratch.tid] && report.failed.isEmpty)
        #expect(slice(scratch.tid) == originalSlice)
        #expect(journal.records().records.isEmpty)
    }
}
