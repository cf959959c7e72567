import VCPUFreqProtocol

/// `vcpufreq stats`: per VM and vCPU, what the host scheduler did with the
/// vCPU thread over an interval (from the BPF counters of two STATUS
/// samples) beside what the guest requested and the hint the daemon applied.
/// Pure: built from two status documents, so it is tested without a daemon.
public struct StatsReport: Codable, Equatable, Sendable {
    /// The daemon's BPF status (`daemon.bpf` of the later sample): why
    /// host figures are missing when they are.
    public var bpf: String
    public var vms: [VM]

    public struct VM: Codable, Equatable, Sendable {
        public var id: UInt32
        public var name: String
        public var profile: String
        public var vcpus: [VCPU]
    }

    public struct VCPU: Codable, Equatable, Sendable {
        public var index: Int
        public var tid: Int32
        /// The guest's last request ("util_hint 600", "set_perf 1500000 kHz").
        public var requested: String?
        /// The hint applied now: util_min, util_max, latency.
        public var utilMin: UInt16?
        public var utilMax: UInt16?
        public var latency: String?
        /// What the host did over the interval; nil without BPF, or when the
        /// thread was not tracked in both samples.
        public var host: HostInterval?
    }

    /// Differences of two host-truth samples of one thread.
    public struct HostInterval: Codable, Equatable, Sendable {
        /// Between the two samples (the daemon's clock), s.
        public var intervalSeconds: Double
        /// Fraction of the interval the thread was on a CPU (1 = all of it).
        public var runtimeShare: Double
        /// Runs that began in the interval (one run delay each).
        public var runs: UInt64
        /// Upper bounds of the histogram buckets holding the median and the
        /// 99th percentile of those runs' delays, µs ("half waited less than
        /// this"); nil without runs.
        public var runDelayP50Microseconds: UInt64?
        public var runDelayP99Microseconds: UInt64?
        /// Mean run delay, µs; nil without runs.
        public var runDelayMeanMicroseconds: Double?
        public var involuntarySwitches: UInt64
        public var voluntarySwitches: UInt64
        public var migrations: UInt64
        public var exitsPerSecond: ExitRates
        /// What the guest asked at the thread's scheduling events over the
        /// interval, as the BPF programs read it from a BPF-map shared page;
        /// nil for a vCPU without one.
        public var guest: GuestInterval? = nil
    }

    /// Differences of two guest-sample counters of one vCPU thread: what the
    /// host's BPF programs read from its slot at its switches, wake-ups and ticks.
    public struct GuestInterval: Codable, Equatable, Sendable {
        /// Consistent reads, and those that found a request not seen before.
        public var reads: UInt64
        public var newRequests: UInt64
        /// Reads refused because the guest was writing (odd or changing sequence).
        public var busy: UInt64
        /// Reads with a value above the VM's cap; with a malformed value.
        public var capped: UInt64
        public var rejected: UInt64
        /// Mean utilization over the reads with one (after the cap); nil without.
        public var meanUtilization: Double?
        /// Share of the reads with the latency flag honoured / a boost granted, 0…1.
        public var latencyShare: Double
        public var boostShare: Double
        /// The last read's utilization (after the cap), cumulative state.
        public var lastUtilization: UInt32?
    }

    /// The guest part of an interval; nil without samples in `new`, or when
    /// a counter went backwards.
    public static func guestInterval(
        from old: StatusDocument.GuestSamples?, to new: StatusDocument.GuestSamples?
    ) -> GuestInterval? {
        guard let new else { return nil }
        let old = old ?? StatusDocument.GuestSamples()
        guard let reads = difference(new.reads, old.reads), let fresh = difference(new.newRequests, old.newRequests),
            let busy = difference(new.busy, old.busy), let capped = difference(new.capped, old.capped),
            let rejected = difference(new.rejected, old.rejected),
            let utilReads = difference(new.utilizationReads, old.utilizationReads),
            let utilSum = difference(new.utilizationSum, old.utilizationSum),
            let latency = difference(new.latencyReads, old.latencyReads),
            let boost = difference(new.boostReads, old.boostReads)
        else { return nil }
        let total = Double(max(reads, 1))
        return GuestInterval(
            reads: reads, newRequests: fresh, busy: busy, capped: capped, rejected: rejected,
            meanUtilization: utilReads > 0 ? Double(utilSum) / Double(utilReads) : nil,
            latencyShare: reads > 0 ? Double(latency) / total : 0, boostShare: reads > 0 ? Double(boost) / total : 0,
            lastUtilization: new.lastUtilization)
    }

    /// KVM exits per second over the interval.
    public struct ExitRates: Codable, Equatable, Sendable {
        /// Every return from KVM_RUN to the VMM.
        public var userspace: Double
        /// Those by `KVM_EXIT_*` reason (only reasons that occurred).
        public var byReason: [ReasonRate]
        /// KVM_RUN interrupted by a signal.
        public var interrupted: Double
        /// tracepoint kvm_exit (every guest exit; 0 under PVM, where it never fires).
        public var kvm: Double
        public var mmioReads: Double
        public var mmioWrites: Double
        public var mmioUnsatisfiedReads: Double
        public var pioIn: Double
        public var pioOut: Double
    }

    public struct ReasonRate: Codable, Equatable, Sendable {
        public var reason: UInt32
        public var name: String
        public var perSecond: Double
    }

    /// The report of the interval between `earlier` and `later` (two STATUS
    /// documents of one daemon). VMs and vCPUs are those of `later`; a vCPU
    /// gets host figures when both samples have its thread's counters and
    /// they did not go backwards (a TID untracked and tracked again).
    public init(earlier: StatusDocument, later: StatusDocument) {
        bpf = later.daemon.bpf
        vms = later.vms.map { vm in
            let before = earlier.vms.first { $0.id == vm.id }
            let vcpus = vm.vcpus.map { vcpu -> VCPU in
                let previous = before?.vcpus.first { $0.index == vcpu.index && $0.tid == vcpu.tid }?.hostTruth
                let host = previous.flatMap { old in vcpu.hostTruth.flatMap { Self.interval(from: old, to: $0) } }
                return VCPU(
                    index: vcpu.index, tid: vcpu.tid, requested: vcpu.lastRequest, utilMin: vcpu.utilMin,
                    utilMax: vcpu.utilMax, latency: vcpu.latency, host: host)
            }
            return VM(id: vm.id, name: vm.name, profile: vm.profile, vcpus: vcpus)
        }
    }

    /// `later - earlier`, or nil when a counter went backwards.
    private static func difference(_ later: UInt64, _ earlier: UInt64) -> UInt64? {
        later >= earlier ? later - earlier : nil
    }

    /// The interval between two samples of one thread; nil when they are not
    /// in order or a counter went backwards.
    public static func interval(
        from old: StatusDocument.HostTruth, to new: StatusDocument.HostTruth
    ) -> HostInterval? {
        guard let nanoseconds = difference(new.sampledAtNanoseconds, old.sampledAtNanoseconds), nanoseconds > 0,
            let runtime = difference(new.runtimeNanoseconds, old.runtimeNanoseconds),
            let runs = difference(new.runDelayCount, old.runDelayCount),
            let delaySum = difference(new.runDelaySumNanoseconds, old.runDelaySumNanoseconds),
            let involuntary = difference(new.involuntarySwitches, old.involuntarySwitches),
            let voluntary = difference(new.voluntarySwitches, old.voluntarySwitches),
            let migrations = difference(new.migrations, old.migrations),
            let exits = exitRates(from: old.exits, to: new.exits, seconds: Double(nanoseconds) / 1e9)
        else { return nil }
        let oldBuckets = old.runDelay.buckets
        let newBuckets = new.runDelay.buckets
        var buckets: [UInt64] = []
        buckets.reserveCapacity(RunDelayHistogram.bucketCount)
        for index in 0..<RunDelayHistogram.bucketCount {
            guard let count = difference(newBuckets[index], oldBuckets[index]) else { return nil }
            buckets.append(count)
        }
        let histogram = RunDelayHistogram(buckets: buckets, sumNanoseconds: delaySum, count: runs)
        var interval = HostInterval(
            intervalSeconds: Double(nanoseconds) / 1e9,
            // The runtime includes the slice a thread is in when sampled, and
            // the two samples are not taken at the very same instant as the
            // clock: never report more than the whole interval.
            runtimeShare: min(1, Double(runtime) / Double(nanoseconds)),
            runs: runs, runDelayP50Microseconds: histogram.p50Microseconds,
            runDelayP99Microseconds: histogram.p99Microseconds,
            runDelayMeanMicroseconds: runs == 0 ? nil : Double(delaySum) / Double(runs) / 1000,
            involuntarySwitches: involuntary, voluntarySwitches: voluntary, migrations: migrations,
            exitsPerSecond: exits)
        interval.guest = guestInterval(from: old.guest, to: new.guest)
        return interval
    }

    private static func exitRates(
        from old: StatusDocument.Exits, to new: StatusDocument.Exits, seconds: Double
    ) -> ExitRates? {
        func rate(_ later: UInt64, _ earlier: UInt64) -> Double? {
            difference(later, earlier).map { Double($0) / seconds }
        }
        var byReason: [ReasonRate] = []
        for entry in new.userspace {
            guard let perSecond = rate(entry.count, old.userspace(reason: entry.reason)) else { return nil }
            if perSecond > 0 { byReason.append(.init(reason: entry.reason, name: entry.name, perSecond: perSecond)) }
        }
        guard let userspace = rate(new.totalUserspace, old.totalUserspace),
            let interrupted = rate(new.userspaceInterrupted, old.userspaceInterrupted),
            let kvm = rate(new.kvmExits, old.kvmExits), let mmioReads = rate(new.mmioReads, old.mmioReads),
            let mmioWrites = rate(new.mmioWrites, old.mmioWrites),
            let unsatisfied = rate(new.mmioUnsatisfiedReads, old.mmioUnsatisfiedReads),
            let pioIn = rate(new.pioIn, old.pioIn), let pioOut = rate(new.pioOut, old.pioOut)
        else { return nil }
        return ExitRates(
            userspace: userspace, byReason: byReason, interrupted: interrupted, kvm: kvm, mmioReads: mmioReads,
            mmioWrites: mmioWrites, mmioUnsatisfiedReads: unsatisfied, pioIn: pioIn, pioOut: pioOut)
    }
}
