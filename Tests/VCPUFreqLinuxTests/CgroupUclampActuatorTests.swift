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
        #expect(actuator.domainDirectory(vm: name, domain: 3) == "/fake/vcpufreq/\(component)/domain3")
    }

    @Test func groupsThreadsPerDomainWritesOnlyChangesAndCleansUp() throws {
        let files = FakeCgroupFiles()
        let actuator = CgroupUclampActuator(root: "/cg", parent: "vcpufreq", files: files)
        let big0 = ThreadTarget(tid: 101, pid: 100, vm: "phone", vcpu: 0, domain: 0)
        let big1 = ThreadTarget(tid: 102, pid: 100, vm: "phone", vcpu: 1, domain: 0)
        let little = ThreadTarget(tid: 103, pid: 100, vm: "phone", vcpu: 2, domain: 1)
        let snapshot = ThreadSnapshot(cgroup: .init(unifiedPath: "/machine.slice/vmm", v1CPUPath: nil))
        for target in [big0, big1, little] { try actuator.prepare(target, snapshot: snapshot) }
        let d0 = "/cg/vcpufreq/phone/domain0"
        let d1 = "/cg/vcpufreq/phone/domain1"
        typealias Op = FakeCgroupFiles.Operation
        let setupCommon: [Op] = [
            .mkdir("/cg/vcpufreq"), .write("/cg/cgroup.subtree_control", "+cpu"),
            .mkdir("/cg/vcpufreq/phone"), .write("/cg/vcpufreq/cgroup.subtree_control", "+cpu"),
        ]
        let expectedSetup: [Op] =
            setupCommon + [
                .write("/cg/vcpufreq/phone/cgroup.procs", "100"),
                .mkdir(d0), .write(d0 + "/cgroup.type", "threaded"),
                .write("/cg/vcpufreq/phone/cgroup.subtree_control", "+cpu"),
                .write(d0 + "/cgroup.threads", "101"),
            ] + setupCommon + [.write(d0 + "/cgroup.threads", "102")] + setupCommon + [
                .mkdir(d1), .write(d1 + "/cgroup.type", "threaded"),
                .write("/cg/vcpufreq/phone/cgroup.subtree_control", "+cpu"),
                .write(d1 + "/cgroup.threads", "103"),
            ]
        #expect(files.operations == expectedSetup)

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
            .write("/cg/vcpufreq/phone/cgroup.threads", "102"), .write("/cg/vcpufreq/phone/cgroup.threads", "103"),
        ])
        files.operations.removeAll()
        try actuator.restore(big0, from: snapshot)
        #expect(files.operations == [
            .write("/cg/machine.slice/vmm/cgroup.procs", "100"), .rmdir(d0), .rmdir(d1), .rmdir("/cg/vcpufreq/phone"),
        ])
    }

    @Test func restoreWithoutStateMovesTheProcessBack() throws {
        // Journal recovery: a new actuator that never prepared the thread.
        let files = FakeCgroupFiles()
        let actuator = CgroupUclampActuator(root: "/cg", files: files)
        let target = ThreadTarget(tid: 7, pid: 6, vm: "laptop", vcpu: 0, domain: 2)
        try actuator.restore(target, from: ThreadSnapshot(cgroup: .init(unifiedPath: "/", v1CPUPath: nil)))
        #expect(files.operations == [
            .write("/cg/cgroup.procs", "6"), .rmdir("/cg/vcpufreq/laptop/domain2"), .rmdir("/cg/vcpufreq/laptop"),
        ])
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
        files.failWrites["/cg/vcpufreq/x/domain0/cpu.uclamp.min"] = .notPermitted
        #expect(throws: Errno.notPermitted) {
            try actuator.apply(HostHint(utilMin: 512), previous: nil, to: target, snapshot: ThreadSnapshot())
        }
        files.failWrites.removeAll()
        try actuator.apply(HostHint(utilMin: 512), previous: nil, to: target, snapshot: ThreadSnapshot())
        #expect(files.operations.last == .write("/cg/vcpufreq/x/domain0/cpu.uclamp.min", "50.00"))
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
