/// Shared page v1: this project's fast path. One region per VM: a 64-byte
/// header, then one 64-byte slot per vCPU. The guest writes the first half of
/// its slot and, only when the host asked for kicks, writes its doorbell (a
/// KVM ioeventfd, completed in the kernel). The host writes the second half.
/// All fields are little-endian 32-bit words accessed with 32-bit loads and
/// stores; the ordering rules are in docs/abi.md and in the C header.
public enum SharedPageABI {
    /// "VCPF" in memory order (bytes 'V','C','P','F').
    public static let magic: UInt32 = 0x4650_4356
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let slotSize = 64
    /// The host never serves more vCPUs than KVM's KVM_MAX_VCPUS here.
    public static let maximumVCPUs = 1024

    /// Bytes a region for `vcpuCount` vCPUs needs, rounded up to whole 4 KiB pages
    /// so it can be mapped into the guest.
    public static func regionSize(vcpuCount: Int) -> Int {
        let bytes = headerSize + slotSize * vcpuCount
        return (bytes + 4095) / 4096 * 4096
    }

    /// Offset of vCPU `index`'s slot from the start of the region.
    public static func slotOffset(_ index: Int) -> Int { headerSize + slotSize * index }

    /// Header fields (offsets from the start of the region). Written by the host only.
    public enum Header {
        public static let magic = 0x00
        public static let version = 0x04
        /// Features the host offers (`Feature`).
        public static let features = 0x08
        /// `HostStatus` bits.
        public static let hostStatus = 0x0c
        public static let vcpuCount = 0x10
        /// Offset of slot 0 (= 64).
        public static let slotOffset = 0x14
        /// Size of one slot (= 64).
        public static let slotSize = 0x18
        /// Upper bound, in µs, on how long a request written without a kick
        /// may wait before the host reads it while kicks are suppressed.
        public static let pollIntervalMicroseconds = 0x1c
        /// Incremented every time a host (re)initialises the region; a guest
        /// that sees it change re-publishes its current request.
        public static let generation = 0x20
        /// Number of doorbells (see the protocol's doorbell table).
        public static let doorbellCount = 0x24
    }

    /// Slot fields (offsets from the start of a slot).
    public enum Slot {
        // Guest area: written by the guest, read by the host.
        /// Guest sequence counter: odd while the guest is writing the slot.
        public static let sequence = 0x00
        /// `GuestFlags` bits.
        public static let flags = 0x04
        /// Utilization request 0...1024 (valid when `GuestFlags.utilValid`).
        public static let utilization = 0x08
        /// Performance request, kHz (valid when `GuestFlags.perfValid`).
        public static let performanceKHz = 0x0c
        /// First byte of the host area; the guest never writes at or after it.
        public static let hostArea = 0x20
        // Host area: written by the host, read by the guest.
        /// Host sequence counter: odd while the host is writing its area.
        public static let hostSequence = 0x20
        /// Current performance of this vCPU's domain, kHz (what cur_perf returns).
        public static let currentPerformanceKHz = 0x24
        /// Applied clamp: util_min in bits 0-15, util_max in bits 16-31.
        public static let appliedClamp = 0x28
        /// `HostSlotFlags` bits.
        public static let hostFlags = 0x2c
        /// The guest `sequence` value the host last consumed.
        public static let acknowledgedSequence = 0x30
        /// Latency hint applied: EEVDF slice in µs, 0 = none.
        public static let appliedSliceMicroseconds = 0x34
        /// Written by the host's BPF programs (pages with `Feature.hostScheduler`),
        /// one whole word at a time, outside the host seqlock: what they last
        /// read from the guest half (`SchedulerSeen`).
        public static let schedulerSeen = 0x38
        /// Written by the host's BPF programs: where the host runs this vCPU
        /// (`SchedulerPlacement`).
        public static let schedulerPlacement = 0x3c
    }

    /// Features offered by the host in the header.
    public struct Feature: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// The host may clear `HostSlotFlags.kick` to suppress doorbells and poll instead.
        public static let kickSuppression = Feature(rawValue: 1 << 0)
        /// Utilization requests (`GuestFlags.utilValid`) are honoured.
        public static let utilization = Feature(rawValue: 1 << 1)
        /// Performance requests (`GuestFlags.perfValid`) are honoured.
        public static let performance = Feature(rawValue: 1 << 2)
        /// `GuestFlags.latencySensitive` becomes a host latency hint.
        public static let latencyHint = Feature(rawValue: 1 << 3)
        /// `GuestFlags.boost` is honoured.
        public static let boost = Feature(rawValue: 1 << 4)
        public static let all: Feature = [.kickSuppression, .utilization, .performance, .latencyHint, .boost]
        /// The page is a BPF map: host BPF programs read the guest half in
        /// place at the vCPU thread's scheduling events and write
        /// `Slot.schedulerSeen` and `Slot.schedulerPlacement`. Offered only on
        /// such pages, so not part of `all` (what a client may ask for).
        public static let hostScheduler = Feature(rawValue: 1 << 5)
    }

    /// Header status written by the host.
    public struct HostStatus: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// A host is attached and serving this region.
        public static let active = HostStatus(rawValue: 1 << 0)
        /// Requests are recorded but no host actuator can apply them.
        public static let degraded = HostStatus(rawValue: 1 << 1)
    }

    /// Guest flags in a slot.
    public struct GuestFlags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// The work now running on this vCPU is latency-sensitive.
        public static let latencySensitive = GuestFlags(rawValue: 1 << 0)
        /// Ask for a short boost (e.g. touch input, app launch).
        public static let boost = GuestFlags(rawValue: 1 << 1)
        /// `utilization` holds a request.
        public static let utilValid = GuestFlags(rawValue: 1 << 2)
        /// `performanceKHz` holds a request.
        public static let perfValid = GuestFlags(rawValue: 1 << 3)
        public static let known: GuestFlags = [.latencySensitive, .boost, .utilValid, .perfValid]
    }

    /// Host flags in a slot.
    public struct HostSlotFlags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// The host wants a doorbell write after the guest updates this slot.
        /// Clear = kicks suppressed: the host polls within `pollIntervalMicroseconds`.
        public static let kick = HostSlotFlags(rawValue: 1 << 0)
        /// The last request was limited by the VM's cap.
        public static let capped = HostSlotFlags(rawValue: 1 << 1)
        /// The last request was malformed (bad util, unknown flags); see counters.
        public static let rejected = HostSlotFlags(rawValue: 1 << 2)
        /// The host could not apply the hint (actuator failure); it keeps trying.
        public static let actuationFailed = HostSlotFlags(rawValue: 1 << 3)
    }
}

/// Where each guest-facing region of one VM lives, relative to the VM's base
/// address (the `qemu,virtual-cpufreq` node's `reg`). Forwarded accesses and
/// trace files use offsets in this one space.
public struct DeviceAddressMap: Equatable, Sendable {
    /// The upstream driver's customary base (`cpufreq@1040000`).
    public static let defaultBase: UInt64 = 0x104_0000
    /// Span reserved for each per-vCPU register region: 1024 windows of 0x1000.
    public static let regionSpan: UInt64 = 0x40_0000

    public static let upstreamOffset: UInt64 = 0
    public static let utilHintOffset: UInt64 = 0x40_0000
    public static let sharedPageOffset: UInt64 = 0x80_0000
    /// One 32-bit doorbell per group at `doorbellOffset + 4 * group`.
    public static let doorbellOffset: UInt64 = 0x88_0000
    public static let doorbellStride: UInt64 = 4
    /// Total span of the device space (the doorbell page included).
    public static let totalSpan: UInt64 = 0x88_1000

    public var base: UInt64
    public var vcpuCount: Int

    public init(base: UInt64 = DeviceAddressMap.defaultBase, vcpuCount: Int) {
        self.base = base
        self.vcpuCount = vcpuCount
    }

    /// Bytes of the upstream `reg` property: 0x1000 × vCPUs.
    public var upstreamSize: UInt64 { UpstreamABI.windowSize * UInt64(vcpuCount) }
    public var utilHintSize: UInt64 { UtilHintABI.windowSize * UInt64(vcpuCount) }
    public var sharedPageSize: UInt64 { UInt64(SharedPageABI.regionSize(vcpuCount: vcpuCount)) }
    public var doorbellSize: UInt64 { Self.doorbellStride * UInt64(vcpuCount) }

    /// A device-space offset, classified.
    public enum Region: Equatable, Sendable {
        /// Upstream window of `vcpu`, register offset within it.
        case upstream(vcpu: Int, offset: UInt64)
        /// Util-hint window of `vcpu`, register offset within it.
        case utilHint(vcpu: Int, offset: UInt64)
        /// Byte offset within the shared page region.
        case sharedPage(offset: UInt64)
        /// Doorbell `index`, byte offset within its 4-byte register.
        case doorbell(index: Int, offset: UInt64)
        /// In a region's reserved span but past the VM's last vCPU.
        case beyondVCPUs(vcpu: Int)
        /// Nothing lives here.
        case unmapped
    }

    /// Classifies a device-space offset. Pure arithmetic, no allocation.
    public func region(ofOffset offset: UInt64) -> Region {
        switch offset {
        case Self.upstreamOffset..<Self.utilHintOffset:
            let vcpu = Int(offset / UpstreamABI.windowSize)
            if vcpu >= vcpuCount { return .beyondVCPUs(vcpu: vcpu) }
            return .upstream(vcpu: vcpu, offset: offset % UpstreamABI.windowSize)
        case Self.utilHintOffset..<Self.sharedPageOffset:
            let relative = offset - Self.utilHintOffset
            let vcpu = Int(relative / UtilHintABI.windowSize)
            if vcpu >= vcpuCount { return .beyondVCPUs(vcpu: vcpu) }
            return .utilHint(vcpu: vcpu, offset: relative % UtilHintABI.windowSize)
        case Self.sharedPageOffset..<Self.doorbellOffset:
            let relative = offset - Self.sharedPageOffset
            if relative >= sharedPageSize { return .unmapped }
            return .sharedPage(offset: relative)
        case Self.doorbellOffset..<Self.totalSpan:
            let relative = offset - Self.doorbellOffset
            let index = Int(relative / Self.doorbellStride)
            if index >= vcpuCount { return .beyondVCPUs(vcpu: index) }
            return .doorbell(index: index, offset: relative % Self.doorbellStride)
        default:
            return .unmapped
        }
    }
}
