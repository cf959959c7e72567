/// Why KVM_RUN returned to userspace: `kvm_run.exit_reason`, also what the
/// `kvm_userspace_exit` tracepoint reports. An open set of values (the
/// kernel adds reasons), so a struct with named members rather than an enum.
/// Pure ABI data, shared by the reference VMM and the BPF exit counters.
public struct KVMExitReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The corresponding C constant is `KVM_EXIT_UNKNOWN`.
    public static let unknown = KVMExitReason(rawValue: 0)
    /// The corresponding C constant is `KVM_EXIT_EXCEPTION`.
    public static let exception = KVMExitReason(rawValue: 1)
    /// A port I/O instruction. The corresponding C constant is `KVM_EXIT_IO`.
    public static let io = KVMExitReason(rawValue: 2)
    /// The corresponding C constant is `KVM_EXIT_HYPERCALL`.
    public static let hypercall = KVMExitReason(rawValue: 3)
    /// The corresponding C constant is `KVM_EXIT_DEBUG`.
    public static let debug = KVMExitReason(rawValue: 4)
    /// The corresponding C constant is `KVM_EXIT_HLT`.
    public static let halt = KVMExitReason(rawValue: 5)
    /// A load or store to guest-physical memory no memslot (or only a
    /// read-only one) backs. The corresponding C constant is `KVM_EXIT_MMIO`.
    public static let mmio = KVMExitReason(rawValue: 6)
    /// The guest triple-faulted. The corresponding C constant is `KVM_EXIT_SHUTDOWN`.
    public static let shutdown = KVMExitReason(rawValue: 8)
    /// The corresponding C constant is `KVM_EXIT_FAIL_ENTRY`.
    public static let failEntry = KVMExitReason(rawValue: 9)
    /// KVM_RUN was interrupted by a signal or `immediate_exit`.
    /// The corresponding C constant is `KVM_EXIT_INTR`.
    public static let interrupted = KVMExitReason(rawValue: 10)
    /// The corresponding C constant is `KVM_EXIT_INTERNAL_ERROR`.
    public static let internalError = KVMExitReason(rawValue: 17)
    /// The corresponding C constant is `KVM_EXIT_SYSTEM_EVENT`.
    public static let systemEvent = KVMExitReason(rawValue: 24)

    /// The C constant without its `KVM_EXIT_` prefix ("MMIO"); "exit N"
    /// for codes without a name here.
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

    public var description: String { "\(name) (\(rawValue))" }
}
