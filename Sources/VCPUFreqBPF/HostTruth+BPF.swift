import VCPUFreqCore
import VCPUFreqProtocol

extension StatusDocument.HostTruth {
    /// The STATUS form of a tracked thread's counters, sampled at
    /// `sampledAtNanoseconds` (CLOCK_MONOTONIC).
    public init(stats: ThreadStats, exits: ExitCounts, sampledAtNanoseconds: UInt64) {
        var buckets = stats.runDelay.buckets
        while buckets.last == 0 { buckets.removeLast() }
        self.init(
            sampledAtNanoseconds: sampledAtNanoseconds, runtimeNanoseconds: stats.runtimeNanoseconds,
            onCPU: stats.isOnCPU, wakeups: stats.wakeups, voluntarySwitches: stats.voluntarySwitches,
            involuntarySwitches: stats.involuntarySwitches, migrations: stats.migrations, lastCPU: stats.lastCPU,
            runDelaySumNanoseconds: stats.runDelay.sumNanoseconds, runDelayCount: stats.runDelay.count,
            runDelayBuckets: buckets, exits: StatusDocument.Exits(exits))
        guest = stats.guest
    }

    /// The run delays as a histogram (buckets padded back to 32).
    public var runDelay: RunDelayHistogram {
        RunDelayHistogram(buckets: runDelayBuckets, sumNanoseconds: runDelaySumNanoseconds, count: runDelayCount)
    }
}

extension StatusDocument.Exits {
    /// Reported under this reason: exits whose reason the programs do not
    /// count one by one (≥ `ExitCounts.countedReasons`).
    public static let otherReason = UInt32.max

    /// The STATUS form of the BPF exit counters: only reasons that occurred.
    public init(_ exits: ExitCounts) {
        var reasons: [StatusDocument.ReasonCount] = []
        for (code, count) in exits.userspaceExitsByReason.enumerated() where count > 0 {
            let reason = KVMExitReason(rawValue: UInt32(code))
            reasons.append(.init(reason: reason.rawValue, name: reason.name, count: count))
        }
        if exits.userspaceExitsOtherReason > 0 {
            reasons.append(.init(reason: Self.otherReason, name: "other", count: exits.userspaceExitsOtherReason))
        }
        self.init(
            kvmExits: exits.kvmExits, userspace: reasons, userspaceInterrupted: exits.userspaceExitsInterrupted,
            userspaceErrors: exits.userspaceExitErrors, mmioReads: exits.mmioReads, mmioWrites: exits.mmioWrites,
            mmioUnsatisfiedReads: exits.mmioUnsatisfiedReads, pioIn: exits.pioIn, pioOut: exits.pioOut)
    }
}

extension VCPUThreadMonitor {
    /// The host truth of `tid` now, or nil when it is not tracked or the
    /// monitor is not running.
    public func hostTruth(tid: Int32) -> StatusDocument.HostTruth? {
        guard let record = try? record(tid) else { return nil }
        return StatusDocument.HostTruth(
            stats: record.stats, exits: record.exits, sampledAtNanoseconds: LibBPF.monotonicNanoseconds())
    }
}
