import Synchronization
import SystemPackage
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux

/// Path 1: the upstream `set_perf` register handled the way crosvm's
/// virtual-cpufreq device handles it — inside the VMM, on the vCPU thread
/// that took the MMIO exit, with `sched_setattr` on that thread itself
/// (pid 0 = the caller) before the guest resumes. No daemon, no socket: the
/// cheapest place a device in userspace can apply a hint.
///
/// Per `set_perf` write it makes two system calls:
/// 1. crosvm's exact call: flags RESET_ON_FORK | KEEP_POLICY | KEEP_PARAMS |
///    UTIL_CLAMP_MIN | UTIL_CLAMP_MAX, util_min = capacity × perf / fmax,
///    util_max = 1024 (the vCPU is as fast as the host CPU). On a kernel
///    without CONFIG_UCLAMP_TASK this fails with EOPNOTSUPP (counted; crosvm
///    would panic) — still a real system call into the scheduler.
/// 2. Something that succeeds everywhere since Linux 6.12 and changes the
///    thread's scheduling on every request: sched_setattr(SCHED_NORMAL,
///    sched_runtime) — an EEVDF slice of `shortSliceNanoseconds` for a
///    request at or above half the maximum, the default slice (0) below it.
///    The benchmark's requests alternate between the top and the bottom of
///    the table, so the slice changes every time.
///
/// `cur_perf` loads are answered from a cached value (crosvm re-reads sysfs
/// on every one; this is the cheaper variant), other registers read 0 and
/// other stores are dropped. Allocation-free per access.
public final class InProcessDevice: MMIOHandler, @unchecked Sendable {
    /// The EEVDF slice a fast request gets, ns (the kernel accepts 0.1...100 ms).
    public static let shortSliceNanoseconds: UInt64 = 300_000

    public let addresses: DeviceAddressMap
    /// What `cur_perf` answers, kHz.
    public let currentPerformanceKHz: UInt32
    private let maximumKHz: UInt64
    private let capacity: UInt64
    private let counters = Counters()

    /// Counts of what the handler did, for the report.
    public struct Counts: Sendable, Equatable, Codable {
        /// `set_perf` writes handled.
        public var requests: UInt64
        /// The uclamp sched_setattr calls that failed, and the errno of the last.
        public var uclampFailures: UInt64
        public var lastUclampErrno: Int32
        /// Slice sched_setattr calls that succeeded / failed.
        public var sliceChanges: UInt64
        public var sliceFailures: UInt64
        /// `cur_perf` loads answered.
        public var reads: UInt64

        public init(
            requests: UInt64, uclampFailures: UInt64, lastUclampErrno: Int32, sliceChanges: UInt64, sliceFailures: UInt64,
            reads: UInt64
        ) {
            self.requests = requests
            self.uclampFailures = uclampFailures
            self.lastUclampErrno = lastUclampErrno
            self.sliceChanges = sliceChanges
            self.sliceFailures = sliceFailures
            self.reads = reads
        }
    }

    private final class Counters: Sendable {
        let requests = Atomic<UInt64>(0)
        let uclampFailures = Atomic<UInt64>(0)
        let lastUclampErrno = Atomic<Int32>(0)
        let sliceChanges = Atomic<UInt64>(0)
        let sliceFailures = Atomic<UInt64>(0)
        let reads = Atomic<UInt64>(0)
    }

    /// - Parameters:
    ///   - base: the device's guest-physical base; `vcpuCount` windows.
    ///   - capacity, maximumKHz: the modeled CPU (the util formula).
    ///   - currentPerformanceKHz: what `cur_perf` reads.
    public init(base: UInt64, vcpuCount: Int, capacity: UInt32, maximumKHz: UInt32, currentPerformanceKHz: UInt32) {
        addresses = DeviceAddressMap(base: base, vcpuCount: vcpuCount)
        self.capacity = UInt64(min(capacity, 1024))
        self.maximumKHz = UInt64(max(maximumKHz, 1))
        self.currentPerformanceKHz = currentPerformanceKHz
    }

    public var counts: Counts {
        Counts(
            requests: counters.requests.load(ordering: .relaxed),
            uclampFailures: counters.uclampFailures.load(ordering: .relaxed),
            lastUclampErrno: counters.lastUclampErrno.load(ordering: .relaxed),
            sliceChanges: counters.sliceChanges.load(ordering: .relaxed),
            sliceFailures: counters.sliceFailures.load(ordering: .relaxed),
            reads: counters.reads.load(ordering: .relaxed))
    }

    /// The upstream register at `gpa`, if it is one of a modeled vCPU's window.
    @inline(__always)
    private func register(at gpa: UInt64) -> UpstreamABI.Register? {
        guard gpa >= addresses.base else { return nil }
        let offset = gpa - addresses.base
        guard case .upstream(_, let register) = addresses.region(ofOffset: offset) else { return nil }
        return UpstreamABI.Register(rawValue: register)
    }

    public func read(vcpu: Int, gpa: UInt64, width: Int) -> UInt64 {
        guard width == 4, register(at: gpa) == .curPerf else { return 0 }
        counters.reads.add(1, ordering: .relaxed)
        return UInt64(currentPerformanceKHz)
    }

    public func write(vcpu: Int, gpa: UInt64, width: Int, value: UInt64) {
        guard width == 4, register(at: gpa) == .setPerf else { return }
        counters.requests.add(1, ordering: .relaxed)
        let performance = min(value & 0xFFFF_FFFF, maximumKHz)
        let util = UInt32((capacity * performance + maximumKHz / 2) / maximumKHz)
        // 1. crosvm: uclamp on the calling thread.
        let clamp = SchedAttr(
            size: UInt32(SchedAttr.sizeWithUtilClamp), policy: .normal,
            flags: [.resetOnFork, .keepPolicy, .keepParams, .utilClampMin, .utilClampMax], utilMin: util, utilMax: 1024)
        do {
            try ThreadScheduling.setAttributes(clamp, of: 0)
        } catch {
            counters.uclampFailures.add(1, ordering: .relaxed)
            counters.lastUclampErrno.store(error.rawValue, ordering: .relaxed)
        }
        // 2. A latency change that works here: the EEVDF slice.
        let slice = SchedAttr(
            size: UInt32(SchedAttr.sizeWithoutUtilClamp), policy: .normal,
            runtimeNanoseconds: 2 * performance >= maximumKHz ? Self.shortSliceNanoseconds : 0)
        do {
            try ThreadScheduling.setAttributes(slice, of: 0)
            counters.sliceChanges.add(1, ordering: .relaxed)
        } catch {
            counters.sliceFailures.add(1, ordering: .relaxed)
        }
    }

    /// Gives thread `tid` the default slice back (call after the runs).
    public static func restoreDefaultSlice(of tid: Int32) {
        try? ThreadScheduling.setAttributes(
            SchedAttr(size: UInt32(SchedAttr.sizeWithoutUtilClamp), policy: .normal), of: tid)
    }
}
