/// One CPU as the scheduler sees it (map "cpu_state").
public struct SchedulerCPUState: Equatable, Sendable {
    public var cpu: Int
    /// Rank of its cluster (SchedulerClusters), nil when in none.
    public var clusterRank: Int?
    /// Sum of util_min of the hinted threads runnable on it: additive demand.
    public var utilSum: Int64
    public var hintedRunnable: UInt32
    /// Hinted threads in its queue now.
    public var hintedQueued: UInt32
    public var hintedRuntimeNanoseconds: UInt64
    public var boostedRuntimeNanoseconds: UInt64
    public var runningBoosted: Bool
    /// Its virtual clock (vtime_now), ns of weighted time.
    public var virtualTimeNanoseconds: UInt64
}

/// The scheduler's event counters (map "counters", summed over CPUs).
public struct SchedulerCounters: Equatable, Sendable, Codable {
    public var enqueuedFair: UInt64 = 0
    public var enqueuedHinted: UInt64 = 0
    public var placedIdle: UInt64 = 0
    public var placedBusy: UInt64 = 0
    public var noCluster: UInt64 = 0
    public var capOverridden: UInt64 = 0
    public var boosts: UInt64 = 0
    public var boostPreemptions: UInt64 = 0
    public var boostsExpired: UInt64 = 0
    public var boostsDenied: UInt64 = 0
    public var boostedRuntimeNanoseconds: UInt64 = 0
    public var dispatchedOwn: UInt64 = 0
    public var dispatchedStolen: UInt64 = 0
    public var hintLookups: UInt64 = 0
    /// Lookups answered from the guest's shared-page slot, read in place.
    public var slotReads: UInt64 = 0

    public init() {}

    /// By the map's field names (STATUS `scheduler.counters`).
    public var byName: [String: UInt64] {
        [
            "enqueued_fair": enqueuedFair, "enqueued_hinted": enqueuedHinted, "placed_idle": placedIdle,
            "placed_busy": placedBusy, "no_cluster": noCluster, "cap_overridden": capOverridden, "boosts": boosts,
            "boost_preemptions": boostPreemptions, "boosts_expired": boostsExpired, "boosts_denied": boostsDenied,
            "boosted_runtime_ns": boostedRuntimeNanoseconds, "dispatched_own": dispatchedOwn,
            "dispatched_stolen": dispatchedStolen, "hint_lookups": hintLookups,
            "slot_reads": slotReads,
        ]
    }
}

/// Where a `SchedExtScheduler` is.
public enum SchedulerState: Equatable, Sendable {
    /// `start()` was not called yet.
    case notStarted
    /// It could not be loaded; why (no sched_ext, another scheduler, the verifier).
    case notLoaded(String)
    /// Registered and enabled: every task of the host is ours.
    case running
    /// The kernel disabled it (error, watchdog, sysrq-S): the host is back on
    /// the fair scheduler.
    case ejected(SchedulerExit)
    /// We unloaded it (`stop()`).
    case stopped
}

/// A scheduler's state with what it places by, and one line for logs and STATUS.
public struct SchedulerStatus: Equatable, Sendable, CustomStringConvertible {
    public var state: SchedulerState = .notStarted
    /// The name the kernel shows in /sys/kernel/sched_ext/root/ops.
    public var name = "vcpufreq"
    public var clusters: SchedulerClusters?
    /// Where the hints are read from.
    public var hintPinPath: String?
    /// The daemon's shared-page maps the scheduler reads the guests' slots
    /// through (vcpufreq_slot.h); [] when none were pinned (util-hint map only).
    public var sharedSlotMaps: [String] = []

    public init() {}

    public var isRunning: Bool { state == .running }

    /// `daemon.scheduler` of STATUS: "loaded: …", "not loaded: why",
    /// "ejected by the kernel: why; the host is back on the fair scheduler".
    public var summary: String {
        switch state {
        case .notStarted: return "not loaded: not started"
        case .notLoaded(let why): return "not loaded: \(why)"
        case .stopped: return "not loaded: stopped"
        case .running:
            var text = "loaded: sched_ext scheduler '\(name)'"
            if let clusters { text += " placing by \(clusters.ranked.count) clusters (\(clusters.description))" }
            if let hintPinPath { text += "; hints from \(hintPinPath)" }
            text += sharedSlotMaps.isEmpty
                ? " (no shared-page maps pinned beside it: the guests' slots are not read in place)"
                : " and the guests' shared-page slots, read in place"
            return text
        case .ejected(let exit):
            return "ejected by the kernel: \(exit); the host is back on the fair scheduler"
        }
    }

    public var description: String { summary }
}
