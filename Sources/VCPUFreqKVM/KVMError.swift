import VCPUFreqCore
import SystemPackage

/// Everything that can go wrong in the reference VMM. Each case's doc comment
/// is its message (`description`).
public enum KVMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The KVM device `path` does not exist: the kernel has no KVM (module not
    /// loaded, or the CPU/hypervisor offers no virtualization to this machine).
    case deviceMissing(path: String)
    /// Permission denied opening `path`: run as root or join the group that
    /// owns the device (usually `kvm`).
    case permissionDenied(path: String)
    /// `path` speaks KVM API version `found`; this VMM needs version `expected` (12).
    case apiVersionMismatch(path: String, found: Int, expected: Int)
    /// KVM lacks `capability`, which this VMM needs.
    case missingCapability(String)
    /// A system call failed: `operation` returned `errno`.
    case systemCall(operation: String, errno: Errno)
    /// An argument given to the VMM is invalid: `reason`.
    case invalidArgument(String)
    /// The guest interpreter exists for x86-64 hosts only.
    case unsupportedArchitecture
    /// `start` was called on a vCPU that is already running a script.
    case vcpuBusy(vcpu: Int)
    /// `wait` was called on a vCPU that has no script started.
    case vcpuIdle(vcpu: Int)
    /// The vCPU stopped on an exit the VMM cannot handle (`reason`, with the
    /// exit's own words in `detail`) at guest `rip`, while running op `opIndex`
    /// of its script: typically a guest fault (SHUTDOWN = triple fault).
    case unexpectedExit(vcpu: Int, reason: KVMExitReason, rip: UInt64, opIndex: Int, detail: [UInt64])
    /// The run did not end within `timeout`: the watchdog stopped the vCPU at
    /// guest `rip` while it ran op `opIndex` of its script.
    case timedOut(vcpu: Int, timeout: Duration, rip: UInt64, opIndex: Int)
    /// The guest interpreter refused op `opIndex` of the script (`status`).
    case scriptRejected(vcpu: Int, status: GuestScriptStatus, opIndex: Int)

    public var description: String {
        switch self {
        case .deviceMissing(let path):
            return "KVM device \(path) does not exist: the kernel has no KVM (module not loaded, "
                + "or no hardware virtualization available to this machine)"
        case .permissionDenied(let path):
            return "permission denied opening \(path): run as root or join the group that owns it (usually kvm)"
        case .apiVersionMismatch(let path, let found, let expected):
            return "\(path) speaks KVM API version \(found); this VMM needs version \(expected)"
        case .missingCapability(let capability):
            return "KVM lacks \(capability), which this VMM needs"
        case .systemCall(let operation, let errno):
            return "\(operation) failed: \(errno) (errno \(errno.rawValue))"
        case .invalidArgument(let reason):
            return "invalid argument: \(reason)"
        case .unsupportedArchitecture:
            return "the guest interpreter exists for x86-64 hosts only"
        case .vcpuBusy(let vcpu):
            return "vCPU \(vcpu) is already running a script"
        case .vcpuIdle(let vcpu):
            return "vCPU \(vcpu) has no script started"
        case .unexpectedExit(let vcpu, let reason, let rip, let opIndex, let detail):
            let words = detail.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
            return "vCPU \(vcpu) stopped on KVM exit \(reason) at rip 0x\(String(rip, radix: 16)) "
                + "(script op \(opIndex)), detail [\(words)]"
        case .timedOut(let vcpu, let timeout, let rip, let opIndex):
            return "vCPU \(vcpu) did not finish within \(timeout): stopped at rip 0x\(String(rip, radix: 16)) "
                + "(script op \(opIndex))"
        case .scriptRejected(let vcpu, let status, let opIndex):
            return "vCPU \(vcpu): the guest interpreter rejected script op \(opIndex): \(status)"
        }
    }
}
