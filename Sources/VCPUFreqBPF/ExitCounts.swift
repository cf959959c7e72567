import VCPUFreqCore

/// KVM exits of one tracked thread (the thread that ran KVM_RUN), by kind.
public struct ExitCounts: Equatable, Sendable {
    /// VCPUFREQ_USERSPACE_EXIT_REASONS of vcpufreq_bpf.h.
    public static let countedReasons = 48

    /// tracepoint kvm/kvm_exit: every exit from the guest (VMX/SVM; never
    /// fires under PVM).
    public var kvmExits: UInt64
    /// Returns from KVM_RUN to userspace by reason, indexed by
    /// `KVMExitReason.rawValue`; always `countedReasons` entries.
    public private(set) var userspaceExitsByReason: [UInt64]
    /// Returns to userspace with a reason ≥ `countedReasons`.
    public var userspaceExitsOtherReason: UInt64
    /// KVM_RUN returned -EINTR (a signal).
    public var userspaceExitsInterrupted: UInt64
    /// KVM_RUN returned another error.
    public var userspaceExitErrors: UInt64
    /// MMIO reads KVM completed in the kernel.
    public var mmioReads: UInt64
    /// MMIO writes (in-kernel devices and ioeventfds, and those sent to userspace).
    public var mmioWrites: UInt64
    /// MMIO reads no in-kernel device served: they go to userspace.
    public var mmioUnsatisfiedReads: UInt64
    /// Port I/O reads.
    public var pioIn: UInt64
    /// Port I/O writes.
    public var pioOut: UInt64

    public init(
        kvmExits: UInt64 = 0, userspaceExitsByReason: [UInt64] = [], userspaceExitsOtherReason: UInt64 = 0,
        userspaceExitsInterrupted: UInt64 = 0, userspaceExitErrors: UInt64 = 0, mmioReads: UInt64 = 0,
        mmioWrites: UInt64 = 0, mmioUnsatisfiedReads: UInt64 = 0, pioIn: UInt64 = 0, pioOut: UInt64 = 0
    ) {
        var padded = Array(userspaceExitsByReason.prefix(Self.countedReasons))
        padded += repeatElement(0, count: Self.countedReasons - padded.count)
        self.kvmExits = kvmExits
        self.userspaceExitsByReason = padded
        self.userspaceExitsOtherReason = userspaceExitsOtherReason
        self.userspaceExitsInterrupted = userspaceExitsInterrupted
        self.userspaceExitErrors = userspaceExitErrors
        self.mmioReads = mmioReads
        self.mmioWrites = mmioWrites
        self.mmioUnsatisfiedReads = mmioUnsatisfiedReads
        self.pioIn = pioIn
        self.pioOut = pioOut
    }

    /// Returns to userspace for `reason`.
    public func userspaceExits(_ reason: KVMExitReason) -> UInt64 {
        reason.rawValue < UInt32(Self.countedReasons)
            ? userspaceExitsByReason[Int(reason.rawValue)] : userspaceExitsOtherReason
    }

    /// All returns from KVM_RUN to userspace, errors and signals included.
    public var totalUserspaceExits: UInt64 {
        userspaceExitsByReason.reduce(0, &+) &+ userspaceExitsOtherReason &+ userspaceExitsInterrupted
            &+ userspaceExitErrors
    }
}
