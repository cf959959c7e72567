/// How a guest request reaches the daemon.
public enum BenchPath: String, Codable, CaseIterable, Sendable {
    /// Register forwarding: the VMM forwards the guest's MMIO store to
    /// util_hint as a posted WRITE over the socket (crosvm's way, one exit
    /// to the VMM per request).
    case registerForwarding = "register"
    /// Shared page + kick: the guest publishes into its slot, then writes
    /// its doorbell, which KVM completes as an ioeventfd (here: the
    /// generator writes the eventfd, as KVM would).
    case sharedPageKick = "shared-kick"
    /// Shared page with kicks suppressed: the guest only publishes; the
    /// daemon polls every poll_interval_us.
    case sharedPagePolled = "shared-poll"
    /// SCMI PERFORMANCE_LEVEL_SET over vhost-user (`bench scmi`): the guest
    /// adds a command to the cmdq and kicks; the daemon answers, applies the
    /// hint and interrupts. One command per kick.
    case scmiLevelSet = "scmi-level-set"
    /// The same, eight commands (one per domain) per kick, as a guest whose
    /// CPUs all change level at once.
    case scmiLevelSetBatched = "scmi-level-set-x8"
    /// PERFORMANCE_LEVEL_GET: the transport and the protocol alone, no hint.
    case scmiLevelGet = "scmi-level-get"

    public var title: String {
        switch self {
        case .registerForwarding: return "1 register WRITE"
        case .sharedPageKick: return "2 shared page + kick"
        case .sharedPagePolled: return "3 shared page, polled"
        case .scmiLevelSet: return "4 SCMI LEVEL_SET"
        case .scmiLevelSetBatched: return "4b SCMI LEVEL_SET, 8 per kick"
        case .scmiLevelGet: return "5 SCMI LEVEL_GET"
        }
    }

    /// Whether the guest can say "latency-sensitive" on this path (the
    /// util-hint registers and SCMI have no latency flag; the shared page does).
    public var hasLatencyFlag: Bool { self == .sharedPageKick || self == .sharedPagePolled }
}

/// What each request changes.
public enum BenchVariant: String, Codable, CaseIterable, Sendable {
    /// Utilization only, alternating between two far-apart values: every
    /// request moves util_min. (On a host with uclamp that is a
    /// sched_setattr per request; without it, no syscall at all.)
    case clamp
    /// Utilization and the latency-sensitive flag both toggle: the daemon
    /// makes a real syscall per request (EEVDF slice via sched_setattr).
    case clampAndSlice = "clamp+slice"
    /// Nothing changes: a read (SCMI LEVEL_GET).
    case read

    public var title: String {
        switch self {
        case .clamp: return "util"
        case .clampAndSlice: return "util+latency"
        case .read: return "read"
        }
    }
}

/// Where the generator and the daemon's event loop may run.
public enum BenchPlacement: String, Codable, CaseIterable, Sendable {
    /// Wherever the scheduler puts them.
    case free
    /// Generator on the first CPU, daemon on the second: every kick is a
    /// cross-CPU wake-up.
    case crossCPU = "cross-cpu"
    /// Both on the first CPU; the generator yields while it waits.
    case sameCPU = "same-cpu"
    /// Both on the first CPU and the generator spins without yielding: a
    /// busy vCPU on the daemon's CPU.
    case sameCPUBusy = "same-cpu-busy"
    /// The daemon on the second CPU, where another thread (a busy vCPU of
    /// another VM) spins at the same priority; the generator alone on the
    /// first CPU, spinning: the wake-up has to preempt the busy thread.
    case busyCPU = "daemon-cpu-busy"
    /// The same, with the daemon's loop given a short EEVDF slice
    /// (`daemonSliceMicroseconds`): a shorter slice lets a waking thread
    /// preempt sooner (Linux 6.12+).
    case busyCPUShortSlice = "daemon-cpu-busy-slice"
    /// The same, with the daemon's loop SCHED_FIFO (priority 1): it
    /// preempts any normal thread the moment it wakes.
    case busyCPURealtime = "daemon-cpu-busy-fifo"

    /// The slice the `busyCPUShortSlice` row gives the daemon (the kernel's
    /// smallest, 0.1 ms).
    public static let daemonSliceMicroseconds: UInt32 = 100

    /// Rows that need a second CPU.
    public var needsTwoCPUs: Bool {
        switch self {
        case .free, .sameCPU, .sameCPUBusy: return false
        case .crossCPU, .busyCPU, .busyCPUShortSlice, .busyCPURealtime: return true
        }
    }

    /// The generator spins without sched_yield while it waits.
    public var generatorSpins: Bool {
        switch self {
        case .sameCPUBusy, .busyCPU, .busyCPUShortSlice, .busyCPURealtime: return true
        case .free, .crossCPU, .sameCPU: return false
        }
    }

    public var title: String {
        switch self {
        case .free: return "free (scheduler's choice)"
        case .crossCPU: return "cross-CPU (generator CPU a, daemon CPU b)"
        case .sameCPU: return "same CPU, generator yields while waiting"
        case .sameCPUBusy: return "same CPU, generator spins (busy vCPU)"
        case .busyCPU: return "daemon's CPU busy (a spinning thread there)"
        case .busyCPUShortSlice: return "daemon's CPU busy, daemon slice \(Self.daemonSliceMicroseconds) µs"
        case .busyCPURealtime: return "daemon's CPU busy, daemon SCHED_FIFO 1"
        }
    }
}
