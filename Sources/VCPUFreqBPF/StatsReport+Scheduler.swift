import VCPUFreqProtocol

extension StatsReport {
    /// The sched_ext scheduler over a `vcpufreq stats` interval: per CPU the
    /// additive demand now (the sum of the runnable hinted vCPUs' util_min)
    /// and how much of the interval hinted and boosted vCPUs ran there, and
    /// the counters' growth.
    public struct SchedulerInterval: Codable, Equatable, Sendable {
        /// `daemon.scheduler.state` of the later sample.
        public var state: String
        public var loaded: Bool
        public var ejections: Int
        public var cpus: [CPU]
        /// Counter growth over the interval (all of it when the earlier sample had none).
        public var counters: [String: UInt64]

        public struct CPU: Codable, Equatable, Sendable {
            public var cpu: Int
            public var cluster: String?
            /// Now: sum of util_min of the hinted vCPU threads runnable there.
            public var utilSum: Int64
            public var hintedRunnable: UInt32
            /// Shares of the interval (0...1) hinted vCPUs, and boosted ones, ran there; nil without an earlier sample.
            public var hintedShare: Double?
            public var boostedShare: Double?
        }

        /// From the later sample, with rates against the earlier one (`seconds` apart).
        public init(earlier: StatusDocument.Scheduler?, later: StatusDocument.Scheduler, seconds: Double) {
            state = later.state
            loaded = later.loaded
            ejections = later.ejections
            cpus = later.cpus.map { cpu in
                let before = earlier?.cpus.first { $0.cpu == cpu.cpu }
                func share(_ now: UInt64, _ then: UInt64?) -> Double? {
                    guard let then, now >= then, seconds > 0 else { return nil }
                    return min(1, Double(now - then) / 1e9 / seconds)
                }
                return CPU(
                    cpu: cpu.cpu, cluster: cpu.cluster, utilSum: cpu.utilSum, hintedRunnable: cpu.hintedRunnable,
                    hintedShare: share(cpu.hintedRuntimeNanoseconds, before?.hintedRuntimeNanoseconds),
                    boostedShare: share(cpu.boostedRuntimeNanoseconds, before?.boostedRuntimeNanoseconds))
            }
            var growth: [String: UInt64] = [:]
            for (name, value) in later.counters {
                let then = earlier?.counters[name] ?? 0
                growth[name] = value >= then ? value - then : value
            }
            counters = growth
        }

        /// The lines `vcpufreq stats` prints under `scheduler:`.
        public func render() -> String {
            var out = "scheduler: \(state)\n"
            if ejections > 0 { out += "  ejected \(ejections) time(s) since the daemon started\n" }
            guard !cpus.isEmpty else { return out }
            let widths = [6, 10, 10, 8, 12, 10]
            out += "  " + zip(["cpu", "cluster", "util_sum", "hinted", "hinted-run", "boosted"], widths)
                .map { StatsReport.pad($0, $1) }.joined() + "\n"
            for cpu in cpus {
                func percent(_ share: Double?) -> String { share.map { StatsReport.fixed($0 * 100, digits: 1) + "%" } ?? "-" }
                let cells = [
                    "\(cpu.cpu)", cpu.cluster ?? "-", "\(cpu.utilSum)", "\(cpu.hintedRunnable)", percent(cpu.hintedShare),
                    percent(cpu.boostedShare),
                ]
                out += "  " + zip(cells, widths).map { StatsReport.pad($0, $1) }.joined() + "\n"
            }
            let boosts = counters["boosts"] ?? 0
            out += "  boosts \(boosts) (preempting \(counters["boost_preemptions"] ?? 0), ran out \(counters["boosts_expired"] ?? 0), "
                + "denied \(counters["boosts_denied"] ?? 0)); placed on an idle CPU \(counters["placed_idle"] ?? 0), "
                + "queued on a CPU of their cluster \(counters["enqueued_hinted"] ?? 0), affinity above the cap \(counters["cap_overridden"] ?? 0)\n"
            return out
        }
    }
}
