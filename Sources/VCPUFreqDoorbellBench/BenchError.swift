import VCPUFreqKVM
import VCPUFreqVMM

/// Why the benchmark could not run. Each case's doc comment is its message.
public enum BenchError: Error, CustomStringConvertible {
    /// KVM cannot be used here: `underlying` (no /dev/kvm, no permission, a
    /// missing capability, not x86-64). There is nothing to measure.
    case kvmUnavailable(String)
    /// The reference VMM or its daemon failed: `underlying`.
    case vmm(VMMError)
    /// KVM failed while `operation`: `underlying`.
    case kvm(operation: String, KVMError)
    /// Threads could not be placed as asked: `reason`.
    case placement(String)
    /// A guest run went wrong in a way that makes its numbers meaningless: `reason`.
    case measurement(String)
    /// The results could not be written: `reason`.
    case output(String)

    public var isKVMUnavailable: Bool {
        if case .kvmUnavailable = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .kvmUnavailable(let reason): return "KVM is not usable here: \(reason)"
        case .vmm(let error): return "\(error)"
        case .kvm(let operation, let error): return "KVM failed while \(operation): \(error)"
        case .placement(let reason): return "cannot place threads: \(reason)"
        case .measurement(let reason): return "measurement failed: \(reason)"
        case .output(let reason): return "cannot write the results: \(reason)"
        }
    }
}
