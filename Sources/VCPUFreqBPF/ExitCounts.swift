/// A `KVM_EXIT_*` reason of struct kvm_run, as the kvm_userspace_exit
/// tracepoint reports it. Open set: the kernel adds reasons.
public struct KVMExitReason: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The corresponding C constant is `KVM_EXIT_UNKNOWN`.
    public static let unknown = KVMExitReason(rawValue: 0)
    /// The corresponding C constant is `KVM_EXIT_EXCEPTION`.
    public static let exception = KVMExitReason(rawValue: 1)
    /// The corresponding C constant is `KVM_EXIT_IO`.
    public static let io = KVMExitReason(rawValue: 2)
    /// The corresponding C constant is `KVM_EXIT_HYPERCALL`.
    public static let hypercall = KVMExitReason(rawValue: 3)
    /// The corresponding C constant is `KVM_EXIT_DEBUG`.
    public static let debug = KVMExitReason(rawValue: 4)
    /// The corresponding C constant is `KVM_EXIT_HLT`.
    public static let hlt = KVMExitReason(rawValue: 5)
    /// The corresponding C constant is `KVM_EXIT_MMIO`.
    public static let mmio = KVMExitReason(rawValue: 6)
    /// The corresponding C constant is `KVM_EXIT_SHUTDOWN`.
    public static let shutdown = KVMExitReason(rawValue: 8)
    /// The corresponding C constant is `KVM_EXIT_FAIL_ENTRY`.
    public static let failEntry = KVMExitReason(rawValue: 9)
    /// The corresponding C constant is `KVM_EXIT_INTR`.
    public static let interrupted = KVMExitReason(rawValue: 10)
    /// The corresponding C constant is `KVM_EXIT_INTERNAL_ERROR`.
    public static let internalError = KVMExitReason(rawValue: 17)
    /// The corresponding C constant is `KVM_EXIT_SYSTEM_EVENT`.
    public static let systemEvent = KVMExitReason(rawValue: 24)

    /// The C constant without its `KVM_EXIT_` prefix ("MMIO"), as VCPUFreqKVM
    /// names them; "exit N" for codes without a name here.
    public var name: String {
        switch rawValue {
        case 0: return "UNKNOWN"
        case 1: return "EXCEPTION"
        case 2: return "IO"
        case 3: return "HYPERCALL"
        case 4: return "DEBUG"
        case 5: return "HLT"
        case 6: return "MMIO"
        case 7: return "IRQ_WINDOW_OPEN"
        case 8: return "SHUTDOWN"
        case 9: return "FAIL_ENTRY"
        case 10: return "INTR"
        case 17: return "INTERNAL_ERROR"
        case 24: return "SYSTEM_EVENT"
        case 29: return "X86_RDMSR"
        case 30: return "X86_WRMSR"
        case 33: return "X86_BUS_LOCK"
        case 37: return "NOTIFY"
        case 39: return "MEMORY_FAULT"
        default: return "exit \(rawValue)"
        }
    }
}

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
