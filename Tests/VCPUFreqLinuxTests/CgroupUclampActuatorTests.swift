import Foundation
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

/// An in-memory cgroupfs: records every operation in order.
final class FakeCgroupFiles: CgroupFiles {
    enum Operation: Equatable, CustomStringConvertible {
        case mkdir(String), rmdir(String), write(String, String), open(String)
        var description: String {
            switch self {
            case .open(let path): return "open \(path)"
            case .mkdir(let path): return "mkdir \(path)"
            case .rmdir(let path): return "rmdir \(path)"
            case .write(let path, let text): return "write \(path) \(text)"
            }
        }
    }
    var operations: [Operation] = []
    var failWrites: [String: Errno] = [:]

    func unifiedPath(ofThread tid: Int32) -> String? { nil }
    func subdirectories(_ path: String) -> [String] { [] }

    func makeDirectory(_ path: String) throws(Errno) { operations.append(.mkdir(path)) }
    func removeDirectory(_ path: String) throws(Errno) { operations.append(.rmdir(path)) }
    func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(Errno) {
        if let error = failWrites[path] { throw error }
        operations.append(.write(path, String(decoding: bytes, as: UTF8.self)))
    }
    func read(_ path: String) throws(Errno) -> String { "" }
    func openControl(_ path: String) throws(Errno) -> any CgroupControlFile {
        operations.append(.open(path))
        return Control(files: self, path: path)
    }

    final class Control: CgroupControlFile {
        let files: FakeCgroupFiles
        let path: String
        init(files: FakeCgroupFiles, path: String) {
            self.files = files
            self.path = path
        }
        func write(_ bytes: UnsafeRawBufferPointer) throws(Errno) { try files.write(bytes, to: path) }
    }
}

@Suite struct CgroupUclampActuatorTests {
    /// The kernel's inverse (kernel/sched/core.c, cpu_uclamp_write):
    /// util = DIV_ROUND_CLOSEST(percent_x100 * 1024, 10000).
    static func kernelUtilization(fromPercentText text: String) -> UInt32? {
        let parts = text.split(separator: ".")
        guard parts.count == 2, parts[1].count == 2, let whole = UInt32(parts[0]), let fraction = UInt32(parts[1]) else {
            return nil
        }
        let hundredths = whole * 100 + fraction
        return (hundredths * 1024 + 5000) / 10000
    }

    @Test(arguments: [
        (UInt16(512), false, "50.00"), (1024, true, "max"), (1024, false, "100.00"), (0, false, "0.00"),
        (0, true, "0.00"), (256, true, "25.00"), (1, false, "0.10"), (10, false, "0.98"), (1023, true, "99.90"),
        (2000, false, "100.00"),
    ])
    func formatsPercentWithTwoDecimals(utilization: UInt16, isMaximum: Bool, expected: String) {
        #expect(CgroupUclampActuator.uclampText(utilization: utilization, isMaximum: isMaximum) == expected)
    }

    @Test func everyUtilizationRoundTripsThroughTheKernelsParser() {
        for utilization in UInt16(0)...1024 {
            let text = CgroupUclampActuator.uclampText(utilization: utilization, isMaximum: false)
            #expect(Self.kernelUtilization(fromPercentText: text) == UInt32(utilization), "\(utilization) → \(text)")
        }
    }

    @Test(arguments: [("phone", "phone"), ("a/b", "a_b"), ("..", "_.."), ("", "_"), ("vm 1", "vm_1")])
    func vmNamesBecomeOneSafeComponent(name: String, component: String) {
        #expect(CgroupUclampActuator.safeComponent(name) == component)
        let actuator = CgroupUclampActuator(root: "/fake/", files: FakeCgroupFiles())
        #expect(actuator.domainDirectory(pid: 42, vm: name, domain: 3) == "/fake/vcpufreq/vmm-42/\(component)/domain3")
    }

    /// The exact cgroupfs commands, in order: set up once per parent, per
    /// process, per VM, per domain; then only the changed values.
    @Test func setsUpPerProcessVMAndDomainWritesOnlyChangesAndCleansUp() throws {
        let files = FakeCgroupFiles()
        let actuator = CgroupUclampActuator(root: "/cg", parent: "vcpufreq", files: files)
        let big0 = ThreadTarget(tid: 101, pid: 100, vm: "phone", vcpu: 0, domain: 0)
        let big1 = ThreadTarget(tid: 102, pid: 100, vm: "phone", vcpu: 1, domain: 0)
        let little = ThreadTarget(tid: 103, pid: 100, vm: "phone", vcpu: 2, domain: 1)
        let snapshot = ThreadSnapshot(cgroup: .init(unifiedPath: "/machine.slice/vmm", v1CPUPath: nil))
        for target in [big0, big1, little] { try actuator.prepare(target, snapshot: snapshot) }
        let p = "/cg/vcpufreq/vmm-100"
        let vm = p + "/phone"
        let d0 = vm + "/domain0"
        let d1 = vm + "/domain1"
        typealias Op = FakeCgroupFiles.Operation
        #expect(files.operations == [
            .mkdir("/cg/vcpufreq"), .write("/cg/cgroup.subtree_control", "+cpu"),
            .write("/cg/vcpufreq/cgroup.subtree_control", "+cpu"), .write("/cg/vcpufreq/cpu.uclamp.min", "max"),
            .mkdir(p), .write(p + "/cgroup.procs", "100"),
            .mkdir(p + "/others"), .write(p + "/others/cgroup.type", "threaded"), .write(p + "/cgroup.subtree_control", "+cpu"),
            .write(p + "/cpu.uclamp.min", "max"),
            .mkdir(vm), .write(vm + "/cgroup.type", "threaded"), .write(vm + "/cpu.uclamp.min", "max"),
            .write(vm + "/cgroup.subtree_control", "+cpu"),
            .mkdir(d0), .write(d0 + "/cgroup.type", "threaded"), .write(d0 + "/cgroup.threads", "101"),
            .write(d0 + "/cgroup.threads", "102"),
            .mkdir(d1), .write(d1 + "/cgroup.type", "threaded"), .write(d1 + "/cgroup.threads", "103"),
        ] as [Op])

        files.operations.removeAll()
        let hint = HostHint(utilMin: 512, utilMax: 1024)
        try actuator.apply(hint, previous: nil, to: big0, snapshot: snapshot)
        try actuator.apply(hint, previous: nil, to: big1, snapshot: snapshot)  // same domain, same values: no write
        try actuator.apply(HostHint(utilMin: 256, utilMax: 512), previous: nil, to: little, snapshot: snapshot)
        try actuator.apply(HostHint(utilMin: 100, utilMax: 1024), previous: hint, to: big0, snapshot: snapshot)
        // Each control file is opened once, then only written.
        #expect(files.operations == [
            .open(d0 + "/cpu.uclamp.max"), .write(d0 + "/cpu.uclamp.max", "max"),
            .open(d0 + "/cpu.uclamp.min"), .write(d0 + "/cpu.uclamp.min", "50.00"),
            .open(d1 + "/cpu.uclamp.min"), .write(d1 + "/cpu.uclamp.min", "25.00"),
            .open(d1 + "/cpu.uclamp.max"), .write(d1 + "/cpu.uclamp.max", "50.00"),
            .write(d0 + "/cpu.uclamp.min", "9.77"),
        ])

        files.operations.removeAll()
        try actuator.restore(big1, from: snapshot)
        try actuator.restore(little, from: snapshot)
        #expect(files.operations == [
            .write(p + "/others/cgroup.threads", "102"), .write(p + "/others/cgroup.threads", "103"),
        ])
        files.operations.removeAll()
        try actuator.restore(big0, from: snapshot)
        #expect(files.operations == [.write("/cg/machine.slice/vmm/cgroup.procs", "100"), .rmdir(p)])
    }

    @Test func restoreWithoutStateMovesTheProcessBack() throws {
        // Journal recovery: a new actuator that never prepared the thread.
        let files = FakeCgroupFiles()
        let actuator = CgroupUclampActuator(root: "/cg", files: files)
        let target = ThreadTarget(tid: 7, pid: 6, vm: "laptop", vcpu: 0, domain: 2)
        try actuator.restore(target, from: ThreadSnapshot(cgroup: .init(unifiedPath: "/", v1CPUPath: nil)))
        #expect(files.operations == [.write("/cg/cgroup.procs", "6"), .rmdir("/cg/vcpufreq/vmm-6")])
    }

    @Test func applyBeforePrepareIsAnErrorNotATrap() {
        let actuator = CgroupUclampActuator(root: "/cg", files: FakeCgroupFiles())
        let target = ThreadTarget(tid: 7, pid: 6, vm: "x", vcpu: 0, domain: 0)
        #expect(throws: Errno.noSuchFileOrDirectory) {
            try actuator.apply(HostHint(utilMin: 1), previous: nil, to: target, snapshot: ThreadSnapshot())
        }
    }

    @Test func failedWriteIsRetriedOnTheNextApply() throws {
        let files = FakeCgroupFiles()
        let actuator = CgroupUclampActuator(root: "/cg", files: files)
        let target = ThreadTarget(tid: 7, pid: 6, vm: "x", vcpu: 0, domain: 0)
        try actuator.prepare(target, snapshot: ThreadSnapshot())
        files.operations.removeAll()
        files.failWrites["/cg/vcpufreq/vmm-6/x/domain0/cpu.uclamp.min"] = .notPermitted
        #expect(throws: Errno.notPermitted) {
            try actuator.apply(HostHint(utilMin: 512), previous: nil, to: target, snapshot: ThreadSnapshot())
        }
        files.failWrites.removeAll()
        try actuator.apply(HostHint(utilMin: 512), previous: nil, to: target, snapshot: ThreadSnapshot())
        #expect(files.operations.last == .write("/cg/vcpufreq/vmm-6/x/domain0/cpu.uclamp.min", "50.00"))
    }

    @Test func captureRecordsTheLiveThreadsCgroups() throws {
        let scratch = try ScratchThread()
        var snapshot = ThreadSnapshot()
        let target = ThreadTarget(tid: scratch.tid, pid: 0, vm: "x", vcpu: 0, domain: 0)
        try CgroupUclampActuator(root: "/cg", files: FakeCgroupFiles()).capture(target, into: &snapshot)
        let expected = CgroupMembership.parse(try FileIO.readText("/proc/self/cgroup"))
        #expect(snapshot.cgroup?.unifiedPath == expected.unifiedPath)
        #expect(snapshot.cgroup?.v1CPUPath == expected.v1Path(controller: "cpu"))
    }
}

@Suite struct KernelCgroupFilesTests {
    /// The real implementation on a plain directory (no cgroupfs here with
    /// a cpu controller): mkdir is idempotent, control files stay open.
    @Test func operationsOnAPlainDirectory() throws {
        let root = temporaryDirectory("cgfiles")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = KernelCgroupFiles()
        try files.makeDirectory(root + "/g")
        try files.makeDirectory(root + "/g")
        #expect(FileManager.default.createFile(atPath: root + "/g/cpu.uclamp.min", contents: nil))
        try files.write("12.50", to: root + "/g/cpu.uclamp.min")
        #expect(try files.read(root + "/g/cpu.uclamp.min") == "12.50")
        let control = try files.openControl(root + "/g/cpu.uclamp.min")
        try Array("max".utf8).withUnsafeBytes { try control.write($0) }
        // A regular file is not truncated by a write (cgroupfs parses each
        // write as a command): "max" lands over the start of "12.50".
        #expect(try files.read(root + "/g/cpu.uclamp.min") == "max50")
        #expect(throws: Errno.noSuchFileOrDirectory) { try files.openControl(root + "/g/missing") }
        #expect(throws: Errno.directoryNotEmpty) { try files.removeDirectory(root + "/g") }
        try FileManager.default.removeItem(atPath: root + "/g/cpu.uclamp.min")
        try files.removeDirectory(root + "/g")
        #expect(!FileManager.default.fileExists(atPath: root + "/g"))
    }
}

/// The actuator against a cgroup v2 model that enforces the kernel's rules
/// (ModelCgroupFiles): what the threads end up in and what clamp the
/// scheduler would use, not which commands were written. The same
/// scenarios run on a real kernel with the cpu controller in the kernel
/// matrix's 7.3 guest (scripts/test-kernels, facet cgroup_uclamp).
@Suite struct CgroupUclampKernelRulesTests {
    static let original = "/machine.slice/vmm"

    /// One VMM process (pid 100) with two VMs: "a" (domains 0 and 1) and
    /// "b" (domain 0), and a thread of its own (107) that is no vCPU.
    struct Rig {
        let model = ModelCgroupFiles()
        let actuator: CgroupUclampActuator
        let a0 = ThreadTarget(tid: 101, pid: 100, vm: "a", vcpu: 0, domain: 0)
        let a1 = ThreadTarget(tid: 102, pid: 100, vm: "a", vcpu: 1, domain: 0)
        let a2 = ThreadTarget(tid: 103, pid: 100, vm: "a", vcpu: 2, domain: 1)
        let b0 = ThreadTarget(tid: 104, pid: 100, vm: "b", vcpu: 0, domain: 0)
        let b1 = ThreadTarget(tid: 105, pid: 100, vm: "b", vcpu: 1, domain: 0)
        let other: Int32 = 107
        var snapshots: [Int32: ThreadSnapshot] = [:]

        init() throws {
            try model.makeDirectory("/cg/machine.slice")
            try model.makeDirectory("/cg/machine.slice/vmm")
            model.addProcess(100, threads: [101, 102, 103, 104, 105, 107], in: CgroupUclampKernelRulesTests.original)
            actuator = CgroupUclampActuator(root: "/cg", files: model)
        }

        var vmA: [ThreadTarget] { [a0, a1, a2] }
        var vmB: [ThreadTarget] { [b0, b1] }

        /// Capture and prepare as the controller does, VM by VM.
        mutating func attach(_ targets: [ThreadTarget]) throws {
            for target in targets {
                var snapshot = ThreadSnapshot()
                try actuator.capture(target, into: &snapshot)
                try actuator.prepare(target, snapshot: snapshot)
                snapshots[target.tid] = snapshot
            }
        }

        func restore(_ targets: [ThreadTarget]) throws {
            for target in targets { try actuator.restore(target, from: snapshots[target.tid]!) }
        }

        func apply(_ hint: HostHint, to target: ThreadTarget) throws {
            try actuator.apply(hint, previous: nil, to: target, snapshot: snapshots[target.tid]!)
        }

        func effective(_ tid: Int32) -> [UInt32]? { model.effectiveClamp(ofThread: tid).map { [$0.min, $0.max] } }
    }

    @Test func severalVMsOfOneProcessAreClampedAndRestored() throws {
        var rig = try Rig()
        try rig.attach(rig.vmA)
        try rig.attach(rig.vmB)
        #expect(rig.snapshots[rig.b0.tid]?.cgroup?.unifiedPath == Self.original, "the second VM's capture is the process's original")
        try rig.apply(HostHint(utilMin: 512, utilMax: 1024), to: rig.a0)
        try rig.apply(HostHint(utilMin: 256, utilMax: 512), to: rig.a2)
        try rig.apply(HostHint(utilMin: 800, utilMax: 1024), to: rig.b0)
        // Each vCPU thread sits in its VM's domain group: the second VM's
        // attach did not take the first VM's threads along.
        #expect(rig.model.unifiedPath(ofThread: 101) == "/vcpufreq/vmm-100/a/domain0")
        #expect(rig.model.unifiedPath(ofThread: 103) == "/vcpufreq/vmm-100/a/domain1")
        #expect(rig.model.unifiedPath(ofThread: 104) == "/vcpufreq/vmm-100/b/domain0")
        // What the scheduler uses: protection reaches the threads through
        // every ancestor; the VMM's own thread is not boosted.
        #expect(rig.effective(101) == [512, 1024])
        #expect(rig.effective(102) == [512, 1024], "one write covers the domain")
        #expect(rig.effective(103) == [256, 512])
        #expect(rig.effective(104) == [800, 1024])
        #expect(rig.effective(rig.other) == [0, 1024])
        #expect(rig.effective(100) == [0, 1024])

        try rig.restore(rig.vmA)
        for tid: Int32 in [101, 102, 103] {
            #expect(rig.effective(tid) == [0, 1024], "\(tid)")
        }
        #expect(rig.model.groups["/vcpufreq/vmm-100/a"] == nil, "VM a's groups are gone")
        #expect(rig.effective(104) == [800, 1024], "VM b keeps its clamp")

        try rig.restore(rig.vmB)
        for tid: Int32 in [100, 101, 102, 103, 104, 105, 107] {
            #expect(rig.model.unifiedPath(ofThread: tid) == Self.original, "\(tid)")
        }
        #expect(rig.model.groups.keys.filter { $0.hasPrefix("/vcpufreq/") }.isEmpty, "\(rig.model.groups.keys.sorted())")
    }

    /// A daemon killed with VMs attached: the next one recovers every
    /// journal record with a fresh actuator.
    @Test func journalRecoveryPutsTheProcessBackAndRemovesItsGroups() throws {
        var rig = try Rig()
        try rig.attach(rig.vmA + rig.vmB)
        try rig.apply(HostHint(utilMin: 512, utilMax: 1024), to: rig.a0)
        let recovering = CgroupUclampActuator(root: "/cg", files: rig.model)
        for target in rig.vmA + rig.vmB { try recovering.restore(target, from: rig.snapshots[target.tid]!) }
        for tid: Int32 in [100, 101, 104, 107] {
            #expect(rig.model.unifiedPath(ofThread: tid) == Self.original, "\(tid)")
        }
        #expect(rig.model.groups["/vcpufreq/vmm-100"] == nil)
        #expect(rig.effective(101) == [0, 1024])
    }

    /// A process the VMM spawned from one of its threads starts in that
    /// thread's group (here a daemon started after a crash, in `others`, as
    /// the kernel matrix's 7.3 guest had it): restore takes it back to the
    /// VMM's original group too, so the subtree can go. Both the normal
    /// restore and journal recovery.
    @Test(arguments: [false, true])
    func aProcessSpawnedInsideTheSubtreeGoesBackWithTheVMM(recovering: Bool) throws {
        var rig = try Rig()
        try rig.attach(rig.vmA)
        rig.model.addProcess(300, threads: [301], in: "/vcpufreq/vmm-100/others")
        rig.model.addProcess(400, threads: [], in: "/vcpufreq/vmm-100/a/domain0")
        let restorer = recovering ? CgroupUclampActuator(root: "/cg", files: rig.model) : rig.actuator
        for target in rig.vmA { try restorer.restore(target, from: rig.snapshots[target.tid]!) }
        for tid: Int32 in [100, 101, 107, 300, 301, 400] {
            #expect(rig.model.unifiedPath(ofThread: tid) == Self.original, "\(tid)")
        }
        #expect(rig.model.groups["/vcpufreq/vmm-100"] == nil, "\(rig.model.groups.keys.sorted())")
    }

    /// A VMM that exited before its restore: its groups go anyway.
    @Test func aGoneProcessLeavesNoGroups() throws {
        var rig = try Rig()
        try rig.attach(rig.vmA)
        for tid: Int32 in [100, 101, 102, 103, 104, 105, 107] { rig.model.removeThread(tid) }
        for target in rig.vmA {
            #expect(throws: Errno.noSuchProcess) { try rig.actuator.restore(target, from: rig.snapshots[target.tid]!) }
        }
        #expect(rig.model.groups["/vcpufreq/vmm-100"] == nil, "\(rig.model.groups.keys.sorted())")
    }

    /// Two VMM processes, one VM each: separate subtrees, neither disturbs the other.
    @Test func twoProcessesHaveTheirOwnSubtrees() throws {
        var rig = try Rig()
        rig.model.addProcess(200, threads: [201], in: "/")
        let other = ThreadTarget(tid: 201, pid: 200, vm: "c", vcpu: 0, domain: 0)
        try rig.attach([rig.a0, other])
        try rig.apply(HostHint(utilMin: 300, utilMax: 1024), to: other)
        #expect(rig.effective(201) == [300, 1024])
        try rig.restore([rig.a0])
        #expect(rig.effective(201) == [300, 1024])
        #expect(rig.model.unifiedPath(ofThread: 201) == "/vcpufreq/vmm-200/c/domain0")
        try rig.restore([other])
        #expect(rig.model.unifiedPath(ofThread: 201) == "/")
        #expect(rig.model.unifiedPath(ofThread: 200) == "/")
    }

    /// The model itself: the rules the actuator first broke.
    @Test func theModelRefusesWhatTheKernelRefuses() throws {
        let model = ModelCgroupFiles()
        model.addProcess(10, threads: [11])
        try model.write("+cpu", to: "/cg/cgroup.subtree_control")
        try model.makeDirectory("/cg/p")
        try model.makeDirectory("/cg/q")
        try model.write("10", to: "/cg/p/cgroup.procs")
        try model.makeDirectory("/cg/p/t")
        try model.write("threaded", to: "/cg/p/t/cgroup.type")
        try model.write("11", to: "/cg/p/t/cgroup.threads")
        #expect(throws: Errno.notSupported) { try model.write("11", to: "/cg/q/cgroup.threads") }
        #expect(throws: Errno.notSupported) { try model.write("10", to: "/cg/p/t/cgroup.procs") }
        try model.write("10", to: "/cg/q/cgroup.procs")  // moves both threads
        #expect(model.unifiedPath(ofThread: 11) == "/q")
        #expect(throws: Errno.notSupported) { try model.write("11", to: "/cg/p/t/cgroup.threads") }
        #expect(throws: Errno.resourceBusy) { try model.removeDirectory("/cg/q") }
        // A child's protection is capped by its parent's (0 by default).
        try model.write("+cpu", to: "/cg/p/cgroup.subtree_control")
        try model.write("50.00", to: "/cg/p/t/cpu.uclamp.min")
        try model.write("10", to: "/cg/p/cgroup.procs")
        try model.write("11", to: "/cg/p/t/cgroup.threads")
        #expect(model.effective("/p/t").min == 0)
        #expect(model.effectiveClamp(ofThread: 11)?.min == 0)
        try model.write("max", to: "/cg/p/cpu.uclamp.min")
        #expect(model.effective("/p/t").min == 512)
        #expect(model.effectiveClamp(ofThread: 11)?.min == 512)
        #expect(model.effectiveClamp(ofThread: 10)?.min == 1024, "a thread in p itself gets p's protection")
    }
}
