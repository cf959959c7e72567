/// What this host's KVM offers, as far as the reference VMM cares.
public struct KVMCapabilities: Sendable, Equatable, CustomStringConvertible {
    /// KVM_CAP_IOEVENTFD: guest writes to a registered address signal an
    /// eventfd inside the kernel, without a userspace exit (the doorbell path). Required.
    public var ioeventfd: Bool
    /// KVM_CAP_IOEVENTFD_ANY_LENGTH: length-0 registrations match any width.
    public var ioeventfdAnyLength: Bool
    /// KVM_CAP_READONLY_MEM: memslots the guest reads without exits and whose
    /// writes exit as MMIO (the read-only register mirror). Required.
    public var readOnlyMemory: Bool
    /// KVM_CAP_COALESCED_MMIO: optional, unused by this VMM, reported.
    public var coalescedMMIO: Bool
    /// KVM_CAP_IMMEDIATE_EXIT: lets the watchdog stop a vCPU without racing
    /// its entry into KVM_RUN. Required.
    public var immediateExit: Bool
    /// KVM_CAP_MAX_VCPUS: most vCPUs one VM may have.
    public var maximumVCPUs: Int
    /// KVM_CAP_NR_VCPUS: the vCPU count the kernel recommends (usually the host's CPUs).
    public var recommendedVCPUs: Int

    public init(
        ioeventfd: Bool, ioeventfdAnyLength: Bool, readOnlyMemory: Bool, coalescedMMIO: Bool,
        immediateExit: Bool, maximumVCPUs: Int, recommendedVCPUs: Int
    ) {
        self.ioeventfd = ioeventfd
        self.ioeventfdAnyLength = ioeventfdAnyLength
        self.readOnlyMemory = readOnlyMemory
        self.coalescedMMIO = coalescedMMIO
        self.immediateExit = immediateExit
        self.maximumVCPUs = maximumVCPUs
        self.recommendedVCPUs = recommendedVCPUs
    }

    /// Names of required capabilities that are absent (empty when usable).
    public var missingRequired: [String] {
        var missing: [String] = []
        if !ioeventfd { missing.append("KVM_CAP_IOEVENTFD") }
        if !readOnlyMemory { missing.append("KVM_CAP_READONLY_MEM") }
        if !immediateExit { missing.append("KVM_CAP_IMMEDIATE_EXIT") }
        if maximumVCPUs < 1 { missing.append("KVM_CAP_MAX_VCPUS") }
        return missing
    }

    public var description: String {
        func yes(_ flag: Bool) -> String { flag ? "yes" : "no" }
        return "IOEVENTFD \(yes(ioeventfd)) (any length \(yes(ioeventfdAnyLength))), "
            + "READONLY_MEM \(yes(readOnlyMemory)), COALESCED_MMIO \(yes(coalescedMMIO)), "
            + "IMMEDIATE_EXIT \(yes(immediateExit)), MAX_VCPUS \(maximumVCPUs), NR_VCPUS \(recommendedVCPUs)"
    }
}
