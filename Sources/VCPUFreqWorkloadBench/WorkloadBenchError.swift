import VCPUFreqKVM
import VCPUFreqVMM

/// Why `bench workload` could not run. Each case's doc comment is its message.
public enum WorkloadBenchError: Error, CustomStringConvertible, Equatable {
    /// A bad option or configuration: `message` (it names the flag).
    case usage(String)
    /// KVM cannot be used here: `reason`. There is nothing to measure.
    case kvmUnavailable(String)
    /// The reference VMM or its daemon failed: `reason`.
    case vmm(String)
    /// KVM failed while `operation`: `reason`.
    case kvm(operation: String, String)
    /// A run went wrong in a way that makes its numbers meaningless: `reason`.
    case measurement(String)
    /// The results could not be written or read: `reason`.
    case output(String)
    /// vcpufreq-bpf-map asked for its shared page as a BPF map and the
    /// daemon gave a memfd: `note` (the daemon's `shared_page_note`).
    case bpfMapPageRefused(String)

    public var isKVMUnavailable: Bool {
        if case .kvmUnavailable = self { return true }
        return false
    }

    public var isUsage: Bool {
        if case .usage = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .usage(let message): return message
        case .kvmUnavailable(let reason): return "KVM is not usable here: \(reason)"
        case .vmm(let reason): return reason
        case .kvm(let operation, let reason): return "KVM failed while \(operation): \(reason)"
        case .measurement(let reason): return "measurement failed: \(reason)"
        case .output(let reason): return "cannot write the results: \(reason)"
        case .bpfMapPageRefused(let note): return "not on this host (the daemon gives no BPF-map page: \(note))"
        }
    }

    static func from(_ error: VMMError) -> WorkloadBenchError { .vmm("\(error)") }
    static func from(_ error: KVMError, while operation: String) -> WorkloadBenchError { .kvm(operation: operation, "\(error)") }
}
