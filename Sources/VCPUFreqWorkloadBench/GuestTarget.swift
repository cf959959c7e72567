import VCPUFreqBenchSupport
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

/// One configuration's VM and how its guests reach the host: the VM, the
/// daemon connection (configurations served by the daemon), the in-VMM
/// device (crosvm-style), and the WORKLOAD block each vCPU runs with.
final class GuestTarget {
    let configuration: WorkloadConfiguration
    let vm: VirtualMachine
    let connected: ConnectedVM?
    let inProcess: InProcessDevice?
    /// The daemon serving it (nil for baseline and crosvm-style).
    let daemon: DaemonProcess?
    let layout: GuestRegions
    private var detached = false

    init(
        configuration: WorkloadConfiguration, vm: VirtualMachine, connected: ConnectedVM?, inProcess: InProcessDevice?,
        daemon: DaemonProcess?, layout: GuestRegions
    ) {
        self.configuration = configuration
        self.vm = vm
        self.connected = connected
        self.inProcess = inProcess
        self.daemon = daemon
        self.layout = layout
    }

    var vcpuCount: Int { vm.vcpus.count }
    var threadIDs: [Int32] { vm.vcpus.map { Int32($0.threadID) } }

    /// The device space (the profile's base for every configuration, so that
    /// the guest's addresses differ only where the path does).
    var addresses: DeviceAddresses {
        connected?.addresses ?? DeviceAddresses(base: WorkloadTopology.baseAddress, vcpuCount: vcpuCount)
    }

    /// vCPU `vcpu`'s block for this configuration: the driver's path, the
    /// guest kernel's knobs, its buffer.
    func block(vcpu: Int, settings: WorkloadSettings, tsc: TSCCalibration) -> WorkloadParameters {
        func ticks(_ microseconds: Double) -> UInt64 { UInt64(max(0, microseconds * tsc.ticksPerMicrosecond)) }
        let kind: WorkloadParameters.Kind
        switch configuration {
        case .baseline: kind = .none
        case .crosvmStyle, .vcpufreqMMIO: kind = .store
        case .vcpufreqSharedPage, .vcpufreqSchedExt: kind = .publish
        case .vcpufreqBPFMap: kind = .publishUtilization
        }
        var block = WorkloadParameters(
            kind: kind, tickTicks: ticks(settings.tickMicroseconds), periodTicks: ticks(settings.peltPeriodMicroseconds),
            rateLimitTicks: ticks(settings.rateLimitMicroseconds), ticksPerMicrosecond: tsc.ticksPerMicrosecond,
            idleMinimumTicks: ticks(settings.idleMinimumMicroseconds), tableKHz: WorkloadTopology.tableKHz)
        let addresses = self.addresses
        switch kind {
        case .none:
            break
        case .store:
            block.target = addresses.upstream(.setPerf, vcpu: vcpu)
            block.currentPerformanceAddress = addresses.upstream(.curPerf, vcpu: vcpu)
        case .publish, .publishUtilization:
            block.target = addresses.slot(vcpu: vcpu)
            block.doorbell = addresses.doorbell(vcpu: vcpu)
            block.currentPerformanceAddress = addresses.upstream(.curPerf, vcpu: vcpu)  // the read-only mirror
        }
        let valid: SharedPageABI.GuestFlags = kind == .publishUtilization ? .utilValid : .perfValid
        block.flags = (valid.rawValue, valid.union(.latencySensitive).rawValue)
        block.buffer = layout.buffer(vcpu)
        block.bufferSize = layout.bufferBytes
        block.seed = SplitMix64.derive(settings.seed, 0xB0FF, UInt64(vcpu))
        return block
    }

    /// Detaches from the daemon (it restores the threads) or gives the
    /// in-VMM device's threads their default slice back. Idempotent.
    func tearDown() {
        guard !detached else { return }
        detached = true
        if let connected { _ = try? connected.detach() }
        if inProcess != nil { for tid in threadIDs { InProcessDevice.restoreDefaultSlice(of: tid) } }
    }

    deinit { tearDown() }
}

/// Where a VM's WORKLOAD blocks and buffers live in its RAM: per vCPU a
/// block (with its jobs and records) in the scratch area, then per vCPU a
/// buffer for the memory loops, 2 MiB aligned.
struct GuestRegions: Sendable, Equatable {
    let vcpus: Int
    let blockStride: UInt64
    let blocksBase: UInt64
    let buffersBase: UInt64
    let bufferBytes: UInt64
    /// Jobs one vCPU's block has room for.
    let jobCapacity: Int

    init(vcpus: Int, jobCapacity: Int, bufferBytes: UInt64) {
        self.vcpus = vcpus
        self.jobCapacity = jobCapacity
        self.bufferBytes = bufferBytes
        blockStride = Self.roundUp(WorkloadParameters.footprint(jobs: jobCapacity), to: 0x1000)
        blocksBase = Self.roundUp(GuestLayout.minimumRAMSize(vcpuCount: vcpus), to: 0x1000)
        buffersBase = Self.roundUp(blocksBase + blockStride * UInt64(vcpus), to: 2 << 20)
    }

    var ramSize: UInt64 { Self.roundUp(buffersBase + bufferBytes * UInt64(vcpus), to: 2 << 20) }
    func block(_ vcpu: Int) -> UInt64 { blocksBase + blockStride * UInt64(vcpu) }
    func buffer(_ vcpu: Int) -> UInt64 { buffersBase + bufferBytes * UInt64(vcpu) }

    static func roundUp(_ value: UInt64, to alignment: UInt64) -> UInt64 { (value + alignment - 1) / alignment * alignment }
}
