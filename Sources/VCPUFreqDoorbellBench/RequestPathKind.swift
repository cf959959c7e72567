/// The five ways a guest request can reach the host, as the report numbers them.
public enum RequestPathKind: Int, CaseIterable, Codable, Sendable {
    /// set_perf: an MMIO exit, handled on the vCPU thread by the VMM, which
    /// calls sched_setattr on itself (`InProcessDevice`, crosvm's way).
    case inVMM = 1
    /// set_perf: an MMIO exit the VMM forwards to the daemon as a posted
    /// WRITE on its socket (a device in another process).
    case forwarded = 2
    /// A shared-page publish and a doorbell store KVM completes as an
    /// ioeventfd signal (no exit to userspace); the daemon wakes on it.
    case kicked = 3
    /// A shared-page publish and no doorbell: the daemon polls the slot.
    case suppressed = 4
    /// A shared-page publish and no doorbell on a page that is a BPF map:
    /// the host's BPF programs read the slot in place at the vCPU thread's
    /// next scheduling event (a switch, or the tick's accounting) and write
    /// `sched_seen`; no exit, no system call, no daemon wake-up. "Applied"
    /// is when the guest sees `sched_seen` show the request.
    case bpfMapPage = 5

    /// Path 3 without the latency flag, measured for the analysis only.
    public static let kickedWithoutSyscallName = "shared-page-kick-no-syscall"
    public static let kickedWithoutSyscallTitle = "shared page + kick, no latency flag (the daemon changes no slice)"

    public var title: String {
        switch self {
        case .inVMM: return "MMIO exit, handled in the VMM thread (sched_setattr on itself)"
        case .forwarded: return "MMIO exit, forwarded to the daemon over its socket"
        case .kicked: return "shared page + ioeventfd kick"
        case .suppressed: return "shared page, kicks suppressed (the daemon polls)"
        case .bpfMapPage: return "shared page is a BPF map, no kick (a host BPF program reads it)"
        }
    }

    /// A short name for charts and JSON.
    public var name: String {
        switch self {
        case .inVMM: return "mmio-in-vmm"
        case .forwarded: return "mmio-forwarded"
        case .kicked: return "shared-page-kick"
        case .suppressed: return "shared-page-no-kick"
        case .bpfMapPage: return "shared-page-bpf-map"
        }
    }

    /// Whether the daemon is on the path (2-4; path 5's requests reach a
    /// BPF program, the daemon only polls for what needs a system call).
    public var reachesDaemon: Bool {
        switch self {
        case .forwarded, .kicked, .suppressed: return true
        case .inVMM, .bpfMapPage: return false
        }
    }
}
