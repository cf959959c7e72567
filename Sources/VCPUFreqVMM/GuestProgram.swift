/// The guest programs `vcpufreq vmm --script NAME` runs. Each starts with the
/// driver's probe (what a guest kernel does at boot), then runs its phases on
/// every vCPU at once, each vCPU on its own window and slot.
public enum GuestProgram: String, CaseIterable, Sendable {
    /// Every path in turn: set_perf, cur_perf ticks, a forwarded read,
    /// util hints, shared-page requests spaced out and in a burst.
    case demo
    /// Only the driver's probe: tables and performance domains as the guest reads them.
    case probe
    /// set_perf from each vCPU (an MMIO exit, forwarded as a posted WRITE).
    case setPerf = "set-perf"
    /// cur_perf on every scheduler tick (no exit with the mirror), beside a forwarded read.
    case ticks
    /// util_hint writes on the util-hint windows.
    case utilHint = "util-hint"
    /// Shared-page requests: one every 2 ms (kicked when the daemon asks) and a burst.
    case publish
    /// A misbehaving guest: an invalid access of each kind and a storm of kicks.
    case misbehave

    public var summary: String {
        switch self {
        case .demo: return "every path: set_perf, cur_perf ticks, forwarded reads, util hints, shared-page requests"
        case .probe: return "the upstream driver's probe: tables and domains as the guest reads them"
        case .setPerf: return "set_perf from each vCPU (MMIO exit, posted WRITE to the daemon)"
        case .ticks: return "cur_perf on every tick (mirror: no exit) and a forwarded read for comparison"
        case .utilHint: return "util_hint writes on the util-hint windows"
        case .publish: return "shared-page requests, spaced (kicked when asked) and in a burst (kicks suppressed)"
        case .misbehave: return "invalid accesses of every kind and a storm of kicks"
        }
    }

    /// The phases the program runs after the probe, in order.
    var phases: [ProgramPhase] {
        switch self {
        case .demo: return [.setPerf, .ticks, .forwardedRead, .utilHint, .spacedPublish, .burstPublish]
        case .probe: return []
        case .setPerf: return [.setPerf]
        case .ticks: return [.ticks, .forwardedRead]
        case .utilHint: return [.utilHint]
        case .publish: return [.spacedPublish, .burstPublish]
        case .misbehave: return [.invalidAccesses, .kickStorm]
        }
    }
}

/// One step of a guest program, run on every vCPU at once.
enum ProgramPhase: Sendable {
    case setPerf, ticks, forwardedRead, utilHint, spacedPublish, burstPublish, invalidAccesses, kickStorm

    /// Repetitions that make the per-operation time readable above the run's
    /// fixed cost (entry and the final exit, some tens of µs).
    static let exitingOperations: UInt32 = 200
    static let tickCount: UInt32 = 100_000
    static let spacedPublishes = 10
    static let spacing: Duration = .milliseconds(2)
    static let burst: UInt32 = 5_000
    static let storm: UInt32 = 20_000

    var name: String {
        switch self {
        case .setPerf: return "set_perf"
        case .ticks: return "cur_perf ticks"
        case .forwardedRead: return "cur_freq reads"
        case .utilHint: return "util_hint"
        case .spacedPublish: return "publish, spaced"
        case .burstPublish: return "publish, burst"
        case .invalidAccesses: return "invalid accesses"
        case .kickStorm: return "kick storm"
        }
    }

    var title: String {
        switch self {
        case .setPerf: return "set_perf: an MMIO exit each, posted to the daemon"
        case .ticks: return "cur_perf on every tick"
        case .forwardedRead: return "cur_freq (util-hint window, never mirrored): a forwarded READ each"
        case .utilHint: return "util_hint: an MMIO exit each, posted to the daemon"
        case .spacedPublish: return "shared page: one request every 2 ms, doorbell rung when the daemon asks"
        case .burstPublish: return "shared page: a burst of requests back to back"
        case .invalidAccesses: return "invalid accesses (bad width, unaligned, read-only, write-only, unmapped, beyond the last vCPU)"
        case .kickStorm: return "a storm of doorbell kicks (ioeventfd)"
        }
    }
}
