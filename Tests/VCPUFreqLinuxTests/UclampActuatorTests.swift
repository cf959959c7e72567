import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

/// The uclamp actuator's syscalls, checked byte for byte through the hook
/// (this kernel has no uclamp: the hook answers instead of the kernel).
@Suite struct UclampActuatorTests {
    let target = ThreadTarget(tid: 4321, pid: 4300, vm: "phone", vcpu: 2, domain: 1)

    /// struct sched_attr as crosvm's device fills it, written out by hand:
    /// size 56, policy 0, flags KEEP_POLICY|KEEP_PARAMS|UTIL_CLAMP_MIN|
    /// UTIL_CLAMP_MAX|RESET_ON_FORK = 0x08|0x10|0x20|0x40|0x01 = 0x79,
    /// nice/priority/runtime/deadline/period 0, then util_min, util_max.
    static func expectedBytes(min: String, max: String) -> String {
        "38000000" + "00000000" + "7900000000000000" + "00000000" + "00000000"
            + String(repeating: "0", count: 48) + min + max
    }

    @Test(arguments: [
        (UInt16(512), UInt16(1024), "00020000", "00040000"),
        (0, 1024, "00000000", "00040000"),
        (300, 300, "2c010000", "2c010000"),  // a slower vCPU: min = max
        (1024, 1024, "00040000", "00040000"),
        (700, 200, "bc020000", "bc020000"),  // max below min is raised to min
        (5000, 9000, "00040000", "00040000"),  // out of range: clamped, never EINVAL
    ])
    func applyWritesTheExactStruct(utilMin: UInt16, utilMax: UInt16, minHex: String, maxHex: String) throws {
        let hook = SyscallHook()
        hook.on("sched_setattr", .succeed())
        try SyscallHook.withHook(hook) {
            try UclampActuator().apply(
                HostHint(utilMin: utilMin, utilMax: utilMax), previous: nil, to: target, snapshot: ThreadSnapshot())
        }
        let calls = hook.calls(named: "sched_setattr")
        try #require(calls.count == 1)
        #expect(calls[0].arguments == [4321, 0])  // tid, syscall flags (always 0)
        #expect(hex(calls[0].bytes) == Self.expectedBytes(min: minHex, max: maxHex))
        #expect(calls[0].bytes[8] == 0x79)
        #expect(hook.calls.count == 1)  // nothing but the one syscall
    }

    @Test func restorePutsBackOriginalOrUnclamped() throws {
        let hook = SyscallHook()
        hook.on("sched_setattr", .succeed())
        let actuator = UclampActuator()
        try SyscallHook.withHook(hook) {
            try actuator.restore(target, from: ThreadSnapshot(utilClamp: .init(min: 100, max: 900)))
            try actuator.restore(target, from: ThreadSnapshot())
        }
        let calls = hook.calls(named: "sched_setattr")
        try #require(calls.count == 2)
        #expect(hex(calls[0].bytes) == Self.expectedBytes(min: "64000000", max: "84030000"))
        #expect(hex(calls[1].bytes) == Self.expectedBytes(min: "00000000", max: "00040000"))
    }

    @Test func captureReadsClampsOnlyWhenReadable() throws {
        let scratch = try ScratchThread()
        let live = ThreadTarget(tid: scratch.tid, pid: 0, vm: "v", vcpu: 0, domain: 0)
        var snapshot = ThreadSnapshot()
        let hook = SyscallHook()
        try SyscallHook.withHook(hook) { try UclampActuator(clampsReadable: false).capture(live, into: &snapshot) }
        #expect(snapshot.utilClamp == nil)
        // One sched_getattr still: the original RESET_ON_FORK, which prepare sets.
        #expect(hook.calls.map(\.name) == ["sched_getattr"])
        #expect(snapshot.resetOnFork == false)
        try UclampActuator(clampsReadable: true).capture(live, into: &snapshot)
        #expect(snapshot.utilClamp != nil)
    }

    @Test func thisKernelRefusesUclampWithEOPNOTSUPP() throws {
        // Detect, don't assume: the sysctl exists exactly when CONFIG_UCLAMP_TASK does.
        let kernelHasUclamp = FileIO.exists("/proc/sys/kernel/sched_util_clamp_min")
        let scratch = try ScratchThread()
        let live = ThreadTarget(tid: scratch.tid, pid: 0, vm: "v", vcpu: 0, domain: 0)
        let result = Result { () throws(Errno) in
            try UclampActuator().apply(HostHint(utilMin: 10), previous: nil, to: live, snapshot: ThreadSnapshot())
        }
        if kernelHasUclamp {
            if isRoot { #expect(throws: Never.self) { try result.get() } }
        } else {
            #expect(throws: Errno.notSupported) { try result.get() }
        }
    }
}
