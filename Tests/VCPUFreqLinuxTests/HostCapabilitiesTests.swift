import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

@Suite struct HostCapabilitiesTests {
    /// (major, minor) of the running kernel, from uname(2).
    static var kernelVersion: (Int, Int) {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        return (numbers.first ?? 0, numbers.dropFirst().first ?? 0)
    }

    /// Oracles independent of the detection code: the uclamp sysctl exists
    /// exactly with CONFIG_UCLAMP_TASK; custom slices came with 6.12.
    @Test(.enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func detectionMatchesThisHost() {
        let capabilities = HostCapabilities.detect()
        print("""
            host capabilities: uclamp \(capabilities.uclamp); cgroup \(capabilities.cgroupUclamp); \
            slice \(capabilities.eevdfSlice) (default \(capabilities.defaultSliceNanoseconds.map(String.init) ?? "?") ns); \
            nice \(capabilities.nice); affinity \(capabilities.affinity); plan \(capabilities.plan())
            """)
        let kernelHasUclamp = FileManager.default.fileExists(atPath: "/proc/sys/kernel/sched_util_clamp_min")
        #expect(capabilities.uclamp.isAvailable == kernelHasUclamp, "\(capabilities.uclamp)")
        if !kernelHasUclamp {
            #expect(capabilities.uclamp.reason.contains("EOPNOTSUPP"), "\(capabilities.uclamp)")
            #expect(!capabilities.cgroupUclamp.isAvailable)
        }
        let (major, minor) = Self.kernelVersion
        let hasCustomSlices = major > 6 || (major == 6 && minor >= 12)
        #expect(capabilities.eevdfSlice.isAvailable == hasCustomSlices, "\(capabilities.eevdfSlice)")
        if hasCustomSlices {
            #expect(capabilities.defaultSliceNanoseconds != nil)
        }
        #expect(capabilities.nice.isAvailable, "\(capabilities.nice)")
        #expect(capabilities.affinity.isAvailable, "\(capabilities.affinity)")
        #expect(!capabilities.bpfMap.isAvailable)
    }

    @Test func cgroupVerdictFollowsTheMountsControllers() throws {
        let root = temporaryDirectory("cg2")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let yes = HostCapabilities.Status.available("uclamp ok")
        try "memory pids\n".write(toFile: root + "/cgroup.controllers", atomically: true, encoding: .utf8)
        let without = HostCapabilities.detectCgroupUclamp(mount: root, uclamp: yes)
        #expect(!without.isAvailable && without.reason.contains("no cpu controller"))
        try "cpuset cpu io memory\n".write(toFile: root + "/cgroup.controllers", atomically: true, encoding: .utf8)
        #expect(HostCapabilities.detectCgroupUclamp(mount: root, uclamp: yes).isAvailable)
        // cpu enabled for children: a child group must show cpu.uclamp.min.
        try "cpu memory\n".write(toFile: root + "/cgroup.subtree_control", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/system.slice", withIntermediateDirectories: true)
        let noFiles = HostCapabilities.detectCgroupUclamp(mount: root, uclamp: yes)
        #expect(!noFiles.isAvailable && noFiles.reason.contains("CONFIG_UCLAMP_TASK_GROUP"))
        #expect(FileManager.default.createFile(atPath: root + "/system.slice/cpu.uclamp.min", contents: nil))
        #expect(HostCapabilities.detectCgroupUclamp(mount: root, uclamp: yes).isAvailable)
        #expect(!HostCapabilities.detectCgroupUclamp(mount: root, uclamp: .unavailable("x")).isAvailable)
        #expect(!HostCapabilities.detectCgroupUclamp(mount: nil, uclamp: yes).isAvailable)
    }

    @Test func injectedFailuresBecomeReasons() {
        let hook = SyscallHook()
        hook.on("sched_setattr", times: 1, .fail(.notSupported))  // the uclamp probe is the first setattr
        hook.on("setpriority", times: 1, .fail(.notPermitted))
        hook.on("sched_setaffinity", times: 1, .fail(.invalidArgument))
        let capabilities = SyscallHook.withHook(hook) { HostCapabilities.detect() }
        #expect(capabilities.uclamp == .unavailable(
            "sched_setattr with UTIL_CLAMP_MIN|UTIL_CLAMP_MAX fails with EOPNOTSUPP: kernel built without CONFIG_UCLAMP_TASK"))
        #expect(capabilities.nice == .unavailable("lowering a thread's nice needs root or CAP_SYS_NICE (EPERM)"))
        #expect(!capabilities.affinity.isAvailable && capabilities.affinity.reason.contains("errno 22"))
    }

    static func capabilities(uclamp: Bool, cgroup: Bool, slice: Bool, nice: Bool, affinity: Bool) -> HostCapabilities {
        func status(_ on: Bool, _ name: String) -> HostCapabilities.Status {
            on ? .available(name) : .unavailable("no \(name)")
        }
        return HostCapabilities(
            uclamp: status(uclamp, "uclamp"), cgroupUclamp: status(cgroup, "cgroup"), cgroup2Mount: "/cg",
            eevdfSlice: status(slice, "slice"), defaultSliceNanoseconds: 700_000, nice: status(nice, "nice"),
            affinity: status(affinity, "affinity"))
    }

    @Test(arguments: [
        // uclamp, cgroup, slice, nice, affinity → chosen clamp, latency, pin, notes
        (true, true, true, true, true, ClampMechanism.uclamp, LatencyMechanism.slice, true, 0),
        (false, true, true, true, true, .cgroup, .slice, true, 1),
        (false, false, false, true, true, .none, .nice, true, 4),  // uclamp, cgroup, bpf-map; slice
        (false, false, false, false, false, .none, .none, false, 6),
    ])
    func planTakesTheFirstAvailable(
        uclamp: Bool, cgroup: Bool, slice: Bool, nice: Bool, affinity: Bool,
        clamp: ClampMechanism, latency: LatencyMechanism, pin: Bool, notes: Int
    ) {
        let plan = Self.capabilities(uclamp: uclamp, cgroup: cgroup, slice: slice, nice: nice, affinity: affinity).plan()
        #expect(plan.clamp == clamp)
        #expect(plan.latency == latency)
        #expect(plan.affinity == pin)
        #expect(plan.notes.count == notes, "\(plan.notes)")
    }

    @Test func planHonoursThePreferenceOrderAndBuildsTheController() {
        let all = Self.capabilities(uclamp: true, cgroup: true, slice: true, nice: true, affinity: true)
        let plan = all.plan(clamp: [.cgroup, .uclamp], latency: [.nice, .slice], affinity: false)
        #expect(plan.clamp == .cgroup && plan.latency == .nice && !plan.affinity)
        #expect(plan.latencyHintKind == .nice)
        let controller = plan.makeController()
        #expect(controller.clamp?.name == "cgroup-uclamp")
        #expect((controller.clamp as? CgroupUclampActuator)?.root == "/cg")
        #expect(controller.latency?.name == "latency")
        #expect(controller.affinity == nil)
        #expect((controller.latency as? LatencyActuator)?.defaultSliceNanoseconds == 700_000)

        let noClamp = Self.capabilities(uclamp: false, cgroup: false, slice: true, nice: true, affinity: true).plan()
        #expect(noClamp.notes.first == "clamp uclamp skipped: no uclamp")
        #expect(noClamp.makeController().clamp == nil)
        // The BPF-map seam: an actuator supplied from outside takes the clamp facet.
        let external = UclampActuator()
        #expect(noClamp.makeController(clampOverride: external).clamp === external)
    }
}
