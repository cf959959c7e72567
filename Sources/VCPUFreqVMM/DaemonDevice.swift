import Glibc
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux

/// The VMM's MMIO handler for the vcpufreq device: every exit inside the
/// VM's device space is forwarded to the daemon (docs/protocol.md), the
/// offset being the guest-physical address minus the base.
///
/// - Loads are synchronous: READ, the vCPU resumes with READ_OK's value.
/// - Stores are posted (WRITE, no reply): the daemon handles one
///   connection's messages in order, so a later READ sees the store's effect.
/// - Except `perftbl_sel` while the read-only mirror is mapped: SYNC WRITE,
///   because the driver's next instruction loads `perftbl_rd` from the mirror
///   with no exit, and the daemon must have refreshed it by then.
///
/// With the shared page, mirror and doorbells mapped, what still exits is:
/// `set_perf`, `perftbl_sel`, the util-hint windows, stores to the mirror,
/// and accesses KVM cannot complete (bad widths at a doorbell, the unmapped
/// rest of the device space). Exits outside the device space are answered
/// here (load 0, store dropped) and counted as `outside`.
///
/// Runs on the vCPU threads; allocation-free per access (the client reuses
/// its buffers). A failed forward (daemon gone) answers 0 and is counted; the
/// first error is kept for the report.
public final class DaemonDevice: MMIOHandler, @unchecked Sendable {
    let client: VCPUFreqClient
    let counters: ForwardingCounters
    /// Written by `configure` before any guest code runs (the vCPU's start
    /// lock orders it before the vCPU thread's reads), read-only afterwards.
    private var base: UInt64 = 0
    /// 0 until configured: nothing is forwarded before ATTACH_OK gave the base.
    private var spanSize: UInt64 = 0
    private var mirrorMapped = false
    private let failure = AnnotatedMutex<ClientError?>(nil)

    init(client: VCPUFreqClient, vcpuCount: Int) {
        self.client = client
        counters = ForwardingCounters(vcpuCount: vcpuCount)
    }

    /// Sets the device space and whether the mirror is mapped. Call before
    /// running guest code, never while a vCPU runs.
    func configure(base: UInt64, mirrorMapped: Bool) {
        self.base = base
        self.spanSize = DeviceAddressMap.totalSpan
        self.mirrorMapped = mirrorMapped
    }

    /// The first forwarding error, if any.
    public var firstFailure: ClientError? { failure.withLock { $0 } }

    public func counts(vcpu: Int) -> ForwardingCounts { counters.snapshot(vcpu: vcpu) }

    /// The device-space offset of `gpa`, nil outside the space.
    @inline(__always)
    private func offset(of gpa: UInt64) -> UInt64? {
        let offset = gpa &- base
        return gpa >= base && offset < spanSize ? offset : nil
    }

    /// `perftbl_sel` of any upstream window: the one store that must be
    /// synchronous while the mirror serves `perftbl_rd`.
    @inline(__always)
    private func needsSync(_ offset: UInt64) -> Bool {
        mirrorMapped && offset < DeviceAddressMap.utilHintOffset
            && offset % UpstreamABI.windowSize == UpstreamABI.Register.perftblSel.rawValue
    }

    public func read(vcpu: Int, gpa: UInt64, width: Int) -> UInt64 {
        guard let offset = offset(of: gpa) else {
            counters.add(vcpu, .outside)
            return 0
        }
        let started = Self.now()
        defer { counters.add(vcpu, .nanoseconds, Self.now() &- started) }
        do {
            let (value, invalid) = try client.read(vcpu: vcpu, offset: offset, width: width)
            counters.add(vcpu, .reads)
            if invalid != 0 { counters.add(vcpu, .invalidReplies) }
            return value
        } catch {
            failed(vcpu, error)
            return 0
        }
    }

    public func write(vcpu: Int, gpa: UInt64, width: Int, value: UInt64) {
        guard let offset = offset(of: gpa) else {
            counters.add(vcpu, .outside)
            return
        }
        let started = Self.now()
        defer { counters.add(vcpu, .nanoseconds, Self.now() &- started) }
        let sync = needsSync(offset)
        do {
            if sync {
                // The client drops WRITE_OK's invalid code, so sync writes
                // are not counted in `invalidReplies` (the daemon counts them).
                try client.write(vcpu: vcpu, offset: offset, value: value, width: width, sync: true)
                counters.add(vcpu, .syncWrites)
            } else {
                try client.write(vcpu: vcpu, offset: offset, value: value, width: width)
                counters.add(vcpu, .postedWrites)
            }
        } catch {
            failed(vcpu, error)
        }
    }

    private func failed(_ vcpu: Int, _ error: ClientError) {
        counters.add(vcpu, .failures)
        failure.withLock { if $0 == nil { $0 = error } }
    }

    @inline(__always)
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
