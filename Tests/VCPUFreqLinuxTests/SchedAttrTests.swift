import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

@Suite struct SchedAttrTests {
    // Expected bytes written by hand from the kernel's struct sched_attr
    // (include/uapi/linux/sched/types.h): u32 size, u32 policy, u64 flags,
    // s32 nice, u32 priority, u64 runtime, u64 deadline, u64 period,
    // u32 util_min, u32 util_max — little-endian.
    static let cases: [(String, SchedAttr, String)] = [
        ("uclamp 512..1024 with crosvm's flags",
         SchedAttr(size: 56, policy: .normal, flags: [.keepPolicy, .keepParams, .utilClampMin, .utilClampMax, .resetOnFork],
                   utilMin: 512, utilMax: 1024),
         "38000000 00000000 7900000000000000 00000000 00000000 0000000000000000 0000000000000000 0000000000000000 00020000 00040000"),
        ("slice 300us, nice -5, VER0 size",
         SchedAttr(size: 48, policy: .normal, nice: -5, runtimeNanoseconds: 300_000),
         "30000000 00000000 0000000000000000 fbffffff 00000000 e093040000000000 0000000000000000 0000000000000000 00000000 00000000"),
        ("SCHED_FIFO priority 10",
         SchedAttr(size: 56, policy: .fifo, flags: .resetOnFork, priority: 10),
         "38000000 01000000 0100000000000000 00000000 0a000000 0000000000000000 0000000000000000 0000000000000000 00000000 00000000"),
        ("SCHED_DEADLINE 10/30/100 ms",
         SchedAttr(size: 56, policy: .deadline, runtimeNanoseconds: 10_000_000, deadlineNanoseconds: 30_000_000,
                   periodNanoseconds: 100_000_000),
         "38000000 06000000 0000000000000000 00000000 00000000 8096980000000000 80c3c90100000000 00e1f50500000000 00000000 00000000"),
        ("every field at its extreme",
         SchedAttr(size: 0xffff_ffff, policy: SchedPolicy(rawValue: 7), flags: SchedFlags(rawValue: 0x7f), nice: -20,
                   priority: 99, runtimeNanoseconds: .max, deadlineNanoseconds: 1, periodNanoseconds: 0x0102_0304_0506_0708,
                   utilMin: 0, utilMax: 0xdead_beef),
         "ffffffff 07000000 7f00000000000000 ecffffff 63000000 ffffffffffffffff 0100000000000000 0807060504030201 00000000 efbeadde"),
    ]

    @Test(arguments: cases)
    func encodesExactBytes(label: String, attr: SchedAttr, expected: String) {
        let encoded = attr.encoded()
        #expect(encoded.count == 56, "\(label)")
        #expect(hex(encoded) == hex(bytes(hex: expected)), "\(label)")
    }

    @Test(arguments: cases)
    func decodesWhatItEncodes(label: String, attr: SchedAttr, expected: String) {
        #expect(SchedAttr(decoding: bytes(hex: expected)) == attr, "\(label)")
    }

    @Test func decodingAVer0StructLeavesClampsZero() {
        let ver0 = Array(bytes(hex: Self.cases[1].2).prefix(48))
        let attr = SchedAttr(decoding: ver0)
        #expect(attr.size == 48)
        #expect(attr.nice == -5)
        #expect(attr.runtimeNanoseconds == 300_000)
        #expect(attr.utilMin == 0 && attr.utilMax == 0)
        #expect(!attr.hasUtilClamp)
        // A field cut short reads as 0 rather than as a partial value.
        #expect(SchedAttr(decoding: [1, 2, 3]) == SchedAttr(size: 0))
        #expect(SchedAttr(decoding: [1, 2, 3, 0, 6]).size == 0x030201)
    }

    @Test func flagValuesAreTheKernels() {
        // include/uapi/linux/sched.h
        let expected: [(SchedFlags, UInt64)] = [
            (.resetOnFork, 0x01), (.reclaim, 0x02), (.deadlineOverrun, 0x04), (.keepPolicy, 0x08),
            (.keepParams, 0x10), (.utilClampMin, 0x20), (.utilClampMax, 0x40), (.utilClamp, 0x60),
        ]
        for (flag, value) in expected { #expect(flag.rawValue == value) }
        let policies: [(SchedPolicy, UInt32)] = [
            (.normal, 0), (.fifo, 1), (.roundRobin, 2), (.batch, 3), (.idle, 5), (.deadline, 6),
        ]
        for (policy, value) in policies { #expect(policy.rawValue == value) }
        #expect(SchedPolicy(rawValue: 7).description == "policy(7)")
        #expect(SchedPolicy.idle.isFair && SchedPolicy.batch.isFair && !SchedPolicy.fifo.isFair)
    }
}
