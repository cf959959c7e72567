/// One guest access to a VM's device space, as a VMM reports it (an MMIO exit,
/// a forwarded access, a trace line).
public struct GuestAccess: Equatable, Sendable {
    /// The vCPU that executed the access. It may differ from the vCPU whose
    /// window is accessed: the cpufreq core's `target()` path writes
    /// `set_perf` of `policy->cpu` from whichever CPU runs the governor.
    public var vcpu: Int
    /// Device-space offset from the VM's base (`DeviceAddressMap`).
    public var offset: UInt64
    /// Access size in bytes. A VMM can only report 1, 2, 4 or 8; anything
    /// else is `InvalidAccess.badWidth`.
    public var width: Int
    /// nil for a read; for a write, the value written (its low `width` bytes
    /// are meaningful, the rest is ignored).
    public var value: UInt64?

    public init(vcpu: Int, offset: UInt64, width: Int = 4, value: UInt64? = nil) {
        self.vcpu = vcpu
        self.offset = offset
        self.width = width
        self.value = value
    }

    public static func read(vcpu: Int, offset: UInt64, width: Int = 4) -> GuestAccess {
        GuestAccess(vcpu: vcpu, offset: offset, width: width, value: nil)
    }

    public static func write(vcpu: Int, offset: UInt64, width: Int = 4, value: UInt64) -> GuestAccess {
        GuestAccess(vcpu: vcpu, offset: offset, width: width, value: value)
    }

    public var isWrite: Bool { value != nil }
}

/// What one access did. The device model never performs I/O: the caller
/// completes the read with `value`, hands `request` to the policy, wakes the
/// doorbell's consumer for `kick`, emulates `sharedPageOffset` on the shared
/// page memory and refreshes the read-only mirror window of `mirrorChanged`.
public struct AccessResult: Equatable, Sendable {
    /// The value a read returns, zero-extended to 64 bits (0 for writes and
    /// for every refused read).
    public var value: UInt64
    /// A request for the policy (`set_perf`, `util_hint`), already validated.
    public var request: GuestRequest?
    /// Doorbell index written: a kick that did not go through an ioeventfd.
    public var kick: Int?
    /// The access fell in the shared page region, at this byte offset within
    /// it: the caller emulates the memory access (width and alignment checked).
    public var sharedPageOffset: UInt64?
    /// Why the access was refused or corrected; nil for a valid access.
    public var invalid: InvalidAccess?
    /// The vCPU whose read-only mirror window (cur_perf, perftbl_len,
    /// perftbl_rd at the current selection, perf_domain) now reads differently.
    public var mirrorChanged: Int?

    public init(
        value: UInt64 = 0, request: GuestRequest? = nil, kick: Int? = nil, sharedPageOffset: UInt64? = nil,
        invalid: InvalidAccess? = nil, mirrorChanged: Int? = nil
    ) {
        self.value = value
        self.request = request
        self.kick = kick
        self.sharedPageOffset = sharedPageOffset
        self.invalid = invalid
        self.mirrorChanged = mirrorChanged
    }

    /// A refused access: reads return 0, writes are dropped.
    public static func refused(_ kind: InvalidAccess) -> AccessResult { AccessResult(invalid: kind) }
}
