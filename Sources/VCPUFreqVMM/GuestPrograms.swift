import VCPUFreqCore
import VCPUFreqKVM

/// Guest operations on one VM's vcpufreq device, by what a guest kernel
/// would do, for the guest script interpreter (`GuestOp`). Each builder
/// names the register or slot it touches; whether the access exits depends
/// on what the VMM mapped there (mirror, shared page, doorbell ioeventfd).
public struct GuestPrograms: Sendable {
    public let addresses: DeviceAddresses

    public init(addresses: DeviceAddresses) { self.addresses = addresses }

    /// The driver's fast switch: `set_perf` of vCPU `vcpu`'s own window,
    /// `count` times (an MMIO exit each; posted to the daemon).
    public func setPerf(vcpu: Int, kHz: UInt32, count: UInt32 = 1) -> GuestOp {
        .write32(addresses.upstream(.setPerf, vcpu: vcpu), value: kHz, count: count)
    }

    /// `ticks` scheduler ticks on vCPU `vcpu`: each loads its `cur_perf`
    /// (frequency invariance), then spins `spinIterations` (the tick's work).
    /// From the mirror this never exits.
    public func ticks(vcpu: Int, count: UInt32, spinIterations: UInt64 = 0) -> GuestOp {
        .tick(address: addresses.upstream(.curPerf, vcpu: vcpu), ticks: count, spinIterations: spinIterations)
    }

    /// `count` loads of an upstream register of vCPU `vcpu`.
    public func read(_ register: UpstreamABI.Register, vcpu: Int, count: UInt32 = 1) -> GuestOp {
        .read32(addresses.upstream(register, vcpu: vcpu), count: count)
    }

    /// A utilization hint (0...1024) on vCPU `vcpu`'s util-hint window.
    public func utilHint(vcpu: Int, utilization: UInt32, count: UInt32 = 1) -> GuestOp {
        .write32(addresses.utilHint(.utilHint, vcpu: vcpu), value: utilization, count: count)
    }

    /// `count` loads of a util-hint register (never mirrored: each forwarded).
    public func read(_ register: UtilHintABI.Register, vcpu: Int, count: UInt32 = 1) -> GuestOp {
        .read32(addresses.utilHint(register, vcpu: vcpu), count: count)
    }

    /// `count` requests in vCPU `vcpu`'s shared-page slot, ringing its
    /// doorbell only when the host's kick bit asks for it. Odd iterations
    /// publish `utilization − 1` / `performanceKHz − 1` (every publish is a
    /// change). Pass only the `flags` bits you mean: `.utilValid` and
    /// `.perfValid` say which fields count.
    public func publish(
        vcpu: Int, utilization: UInt32 = 0, performanceKHz: UInt32 = 0, flags: SharedPageABI.GuestFlags,
        count: UInt32 = 1
    ) -> GuestOp {
        .publish(
            slot: addresses.slot(vcpu: vcpu), utilization: utilization, performanceKHz: performanceKHz, flags: flags,
            doorbell: addresses.doorbell(vcpu: vcpu), count: count)
    }

    /// Spins until the daemon acknowledged `sequence` in vCPU `vcpu`'s slot
    /// (`ack_sequence`), at most `maxSpins` checks: the guest-observed delay
    /// from publishing to the daemon consuming.
    public func awaitAcknowledgement(vcpu: Int, sequence: UInt32, maxSpins: UInt64) -> GuestOp {
        .wait32(
            address: addresses.slotField(SharedPageABI.Slot.acknowledgedSequence, vcpu: vcpu), value: sequence,
            maxSpins: maxSpins)
    }

    /// Guest work: a busy loop of about `duration` (no memory access, no
    /// exit), with `calibration` from `VCPU.calibrateSpin()`.
    public func work(_ duration: Duration, calibration: SpinCalibration) -> GuestOp {
        .spin(iterations: calibration.iterations(for: duration))
    }

    /// `count` writes to vCPU `vcpu`'s doorbell (a kick each, whatever the kick bit says).
    public func ring(vcpu: Int, count: UInt32 = 1) -> GuestOp {
        .write32(addresses.doorbell(vcpu: vcpu), value: UInt32(truncatingIfNeeded: vcpu), count: count)
    }

    /// The driver's table build for CPU `cpu` into guest RAM at `buffer`
    /// (`GuestOp.perfTable`, at most `UpstreamABI.maximumTableEntries`).
    public func perfTable(cpu: Int, buffer: UInt64) -> GuestOp {
        .perfTable(
            window: addresses.upstreamWindow(vcpu: cpu), buffer: buffer,
            maximumEntries: UInt32(UpstreamABI.maximumTableEntries))
    }
}
