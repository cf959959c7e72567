import VCPUFreqCore

/// Guest-physical addresses of one VM's vcpufreq device space (docs/abi.md):
/// what a guest program loads and stores. The base comes from the daemon
/// (ATTACH_OK), i.e. from the VM profile's `base_address`.
public struct DeviceAddresses: Sendable, Equatable {
    public let map: DeviceAddressMap

    public init(base: UInt64, vcpuCount: Int) {
        map = DeviceAddressMap(base: base, vcpuCount: vcpuCount)
    }

    public var base: UInt64 { map.base }
    public var vcpuCount: Int { map.vcpuCount }
    /// The whole device space: every guest access in it goes to the daemon.
    public var span: Range<UInt64> { base..<(base + DeviceAddressMap.totalSpan) }

    /// Start of vCPU `vcpu`'s upstream register window (its `cur_perf`).
    public func upstreamWindow(vcpu: Int) -> UInt64 {
        base + DeviceAddressMap.upstreamOffset + UpstreamABI.windowSize * UInt64(vcpu)
    }

    /// An upstream (`qemu,virtual-cpufreq`) register of vCPU `vcpu`.
    public func upstream(_ register: UpstreamABI.Register, vcpu: Int) -> UInt64 {
        upstreamWindow(vcpu: vcpu) + register.rawValue
    }

    /// A util-hint register of vCPU `vcpu`.
    public func utilHint(_ register: UtilHintABI.Register, vcpu: Int) -> UInt64 {
        base + DeviceAddressMap.utilHintOffset + UtilHintABI.windowSize * UInt64(vcpu) + register.rawValue
    }

    /// The shared page region (its header).
    public var sharedPage: UInt64 { base + DeviceAddressMap.sharedPageOffset }

    /// vCPU `vcpu`'s 64-byte slot in the shared page.
    public func slot(vcpu: Int) -> UInt64 { sharedPage + UInt64(SharedPageABI.slotOffset(vcpu)) }

    /// A field of vCPU `vcpu`'s slot (a `SharedPageABI.Slot` offset).
    public func slotField(_ field: Int, vcpu: Int) -> UInt64 { slot(vcpu: vcpu) + UInt64(field) }

    /// vCPU `vcpu`'s doorbell.
    public func doorbell(vcpu: Int) -> UInt64 {
        base + DeviceAddressMap.doorbellOffset + DeviceAddressMap.doorbellStride * UInt64(vcpu)
    }
}
