import VCPUFreqClient
import VCPUFreqKVM

/// Why the reference VMM could not serve a VM through the daemon. Each
/// case's doc comment is its message (`description`).
public enum VMMError: Error, CustomStringConvertible {
    /// KVM cannot be used here (`underlying` says why: no /dev/kvm, no
    /// permission, a missing capability, not x86-64). Callers fall back to
    /// something that needs no KVM (`vcpufreq demo`).
    case kvmUnavailable(KVMError)
    /// KVM failed while building or running the VM.
    case kvm(KVMError)
    /// No daemon answers at `socketPath`: is `vcpufreq serve --socket PATH` running?
    case daemonUnreachable(socketPath: String, ClientError)
    /// The daemon refused or failed `operation` (ATTACH, MAP_SHARED, ...).
    case daemon(operation: String, ClientError)
    /// The daemon's shared memory layout cannot be mapped as described: `reason`.
    case badSharedLayout(String)
    /// The device address space at `base` collides with guest RAM or the VMM's own pages: `reason`.
    case badDeviceBase(base: UInt64, reason: String)
    /// The guest program did not do what the driver expects: `reason`.
    case guestFailed(String)
    /// Starting, reaching or stopping a daemon process failed: `reason`.
    case daemonProcess(String)

    /// True when KVM itself is unusable on this machine (not a bug, not the daemon).
    public var isKVMUnavailable: Bool {
        if case .kvmUnavailable = self { return true }
        return false
    }

    /// Sorts a KVM error from opening the device: a machine without usable
    /// KVM is `.kvmUnavailable`, anything later is `.kvm`.
    static func opening(_ error: KVMError) -> VMMError {
        switch error {
        case .deviceMissing, .permissionDenied, .apiVersionMismatch, .missingCapability, .unsupportedArchitecture:
            return .kvmUnavailable(error)
        default:
            return .kvm(error)
        }
    }

    public var description: String {
        switch self {
        case .kvmUnavailable(let error): return "KVM is not usable here: \(error)"
        case .kvm(let error): return "KVM: \(error)"
        case .daemonUnreachable(let path, let error):
            return "no vcpufreq daemon at \(path) (\(error)); start one with `vcpufreq serve --topology FILE --socket \(path)`"
        case .daemon(let operation, let error): return "the daemon failed \(operation): \(error)"
        case .badSharedLayout(let reason): return "the daemon's shared memory layout is unusable: \(reason)"
        case .badDeviceBase(let base, let reason):
            return "device base 0x\(String(base, radix: 16)) cannot be used: \(reason)"
        case .guestFailed(let reason): return "guest program failed: \(reason)"
        case .daemonProcess(let reason): return "daemon process: \(reason)"
        }
    }
}
