import Foundation
import Glibc
import Testing
@testable import VCPUFreqLinux

@Suite struct ProcFSTests {
    /// A stat line with fields 3...22 numbered so field N holds N, behind
    /// the given comm: the parser must find "22" whatever the comm holds.
    static func statLine(comm: String) -> String {
        "4242 (\(comm)) R " + (4...21).map(String.init).joined(separator: " ") + " 22 23 24 25"
    }

    @Test(arguments: [
        "vcpu 0", "crosvm_vcpu0", "a) b (c", ")", "((", "x) 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 (", "",
    ])
    func startTimeSurvivesHostileComm(comm: String) {
        #expect(ProcFS.parseStartTime(stat: Self.statLine(comm: comm)) == 22)
    }

    /// Fields 4...21 of a stat line (what lies between the state and field 22).
    static let middle = (4...21).map(String.init).joined(separator: " ")

    @Test(arguments: [
        "", "4242 (x R 1 2", "4242 (x) R 4 5 6", "no parens at all 1 2 3",
        "1 (x) R \(middle) 2x2 23", "1 (x) R \(middle) 18446744073709551616 23",
    ])
    func malformedStatGivesNil(text: String) {
        #expect(ProcFS.parseStartTime(stat: text) == nil)
    }

    @Test(arguments: [
        ("1 (x) R \(middle) 22\n", UInt64(22)),
        ("1 (x)  R  \(middle.replacingOccurrences(of: " ", with: "  "))  18446744073709551615 23\n", UInt64.max),
    ] as [(String, UInt64?)])
    func startTimeAtTheEdges(text: String, expected: UInt64?) {
        #expect(ProcFS.parseStartTime(stat: text) == expected)
    }

    /// The kernel's own line for this process: field 22 as a plain split of
    /// the text after the last ')' reads it.
    @Test func startTimeOfThisProcessMatchesTheKernelsLine() throws {
        let text = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        let after = text[text.index(after: try #require(text.lastIndex(of: ")")))...]
        let fields = after.split(whereSeparator: { $0 == " " || $0 == "\n" })
        #expect(ProcFS.parseStartTime(stat: text) == UInt64(fields[19]))
        #expect(ProcFS().startTime(ofThread: getpid(), inProcess: getpid()) == UInt64(fields[19]))
    }

    @Test(arguments: [
        ("se.slice                                     :               300000\n", UInt64(300_000)),
        ("se.exec_start : 5.000000\nse.slice : 1400000\nnr_switches : 3\n", 1_400_000),
        ("se.slice\t:\t2.500000\n", 2_500_000),  // split-ns print: ms.nnnnnn
        ("se.vruntime : 12\n", nil),
        ("se.slice : lots\n", nil),
        ("se.slice_extra : 5\n", nil),
    ] as [(String, UInt64?)])
    func schedFieldParse(text: String, expected: UInt64?) {
        #expect(ProcFS.parseSchedField("se.slice", in: text) == expected)
    }

    @Test func cgroupFileParse() {
        let text = """
            12:cpu,cpuacct:/system.slice/vmm.service
            11:memory:/user.slice
            1:name=systemd:/x
            0::/system.slice/vmm.service:with:colons
            garbage
            """
        let groups = CgroupMembership.parse(text)
        #expect(groups.count == 4)
        #expect(groups.unifiedPath == "/system.slice/vmm.service:with:colons")
        #expect(groups.v1Path(controller: "cpu") == "/system.slice/vmm.service")
        #expect(groups.v1Path(controller: "cpuacct") == "/system.slice/vmm.service")
        #expect(groups.v1Path(controller: "blkio") == nil)
        #expect(CgroupMembership.parse("0::/\n").unifiedPath == "/")
    }

    @Test func liveThreadFacts() throws {
        let procfs = ProcFS()
        let scratch = try ScratchThread()
        let pid = getpid()
        #expect(procfs.isThread(scratch.tid, ofProcess: pid))
        #expect(procfs.processID(ofThread: scratch.tid) == pid)
        #expect(!procfs.isThread(scratch.tid, ofProcess: 1))
        #expect(!procfs.isThread(-1, ofProcess: pid))
        let start = try #require(procfs.startTime(ofThread: scratch.tid, inProcess: pid))
        let processStart = try #require(procfs.startTime(ofThread: pid, inProcess: pid))
        #expect(start >= processStart)
        #expect(procfs.eevdfSliceNanoseconds(ofThread: scratch.tid) != nil)
        let cgroups = procfs.cgroups(ofThread: scratch.tid)
        #expect(!cgroups.isEmpty)
        let selfText = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        #expect(cgroups == CgroupMembership.parse(selfText))
        scratch.stop()
        #expect(!procfs.isThread(scratch.tid, ofProcess: pid))
        #expect(procfs.startTime(ofThread: scratch.tid, inProcess: pid) == nil)
        #expect(procfs.cgroups(ofThread: scratch.tid).isEmpty || procfs.processID(ofThread: scratch.tid) != pid)
    }

    @Test func fixtureRoot() throws {
        let root = temporaryDirectory("proc")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/10/task/11", withIntermediateDirectories: true)
        try Self.statLine(comm: "qemu (vcpu) 1").write(toFile: root + "/10/task/11/stat", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/11", withIntermediateDirectories: true)
        try "Name:\tx\nTgid:\t10\nPid:\t11\n".write(toFile: root + "/11/status", atomically: true, encoding: .utf8)
        try "se.slice : 700000\n".write(toFile: root + "/11/sched", atomically: true, encoding: .utf8)
        let procfs = ProcFS(root: root)
        #expect(procfs.isThread(11, ofProcess: 10))
        #expect(procfs.startTime(ofThread: 11, inProcess: 10) == 22)
        #expect(procfs.processID(ofThread: 11) == 10)
        #expect(procfs.eevdfSliceNanoseconds(ofThread: 11) == 700_000)
        #expect(procfs.eevdfSliceNanoseconds(ofThread: 12) == nil)
    }

    @Test func mountInfoFindsCgroup2() {
        let text = """
            22 1 0:21 / /proc rw,nosuid - proc proc rw
            30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
            31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
            33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
            """
        #expect(HostCapabilities.cgroup2MountPoint(mountInfo: text) == "/sys/fs/cgroup/unified")
        #expect(HostCapabilities.cgroup2MountPoint(mountInfo: "40 1 0:5 / /mnt/with\\040space rw - cgroup2 none rw") == "/mnt/with space")
        #expect(HostCapabilities.cgroup2MountPoint(mountInfo: "22 1 0:21 / /proc rw - proc proc rw") == nil)
    }
}
