/// How long and how hard `vcpufreq bench doorbell` measures. `full` is what
/// the published table comes from; `quick` keeps the structure (every path,
/// every placement) with fewer samples, for smoke tests and a first look.
public struct BenchConfiguration: Sendable, Equatable {
    /// Rounds of each back-to-back cost measurement; the median is reported.
    public var costRounds: Int
    /// Extra `serve` options for the benchmark's daemon (e.g. `--busy-poll-us 300`).
    public var daemonArguments: [String] = []
    /// Requests per cost round for the paths whose requests exit (1, 2) and
    /// the forwarded reads: each is tens of µs, so a round is tens of ms.
    public var exitingRequests: UInt32
    /// Requests per cost round with a kick (3): a few µs each.
    public var kickedRequests: UInt32
    /// Requests per cost round with kicks suppressed (4): nanoseconds each,
    /// so many more are needed to rise above the run's fixed cost.
    public var suppressedRequests: UInt32
    /// cur_perf loads per round from the read-only mirror (sub-ns each).
    public var mirrorReads: UInt32
    /// Timed requests per path and placement: the latency distribution.
    public var latencySamples: Int
    /// The timed requests of a placement run in this many rounds, each
    /// round every path in turn: a burst of other work on the machine lands
    /// on every path alike instead of on whichever ran at the time. The cost
    /// rounds are interleaved the same way.
    public var latencyRounds: Int
    /// Timed requests per guest run (progress is shown between runs). Even,
    /// so every run starts with request A after the previous run's B.
    public var samplesPerRun: Int
    /// Guest work between timed requests is uniform in [0, about this): a
    /// request lands at a random phase of the daemon's poll interval, and the
    /// mean spacing is near schedutil's 1 ms rate limit for set_perf.
    public var maximumGap: Duration
    /// A timed request whose hint does not show within this long is counted
    /// as abandoned (the guest moves on).
    public var applyTimeout: Duration
    /// The suppressed path's (4) documented bound: the daemon polls every slot this often.
    public var pollIntervalMicroseconds: Int
    /// eventfd wake-ups per placement in the host-only baseline.
    public var wakeupSamples: Int

    public init(
        costRounds: Int, exitingRequests: UInt32, kickedRequests: UInt32, suppressedRequests: UInt32,
        mirrorReads: UInt32, latencySamples: Int, latencyRounds: Int, samplesPerRun: Int, maximumGap: Duration, applyTimeout: Duration,
        pollIntervalMicroseconds: Int, wakeupSamples: Int
    ) {
        self.costRounds = costRounds
        self.exitingRequests = exitingRequests
        self.kickedRequests = kickedRequests
        self.suppressedRequests = suppressedRequests
        self.mirrorReads = mirrorReads
        self.latencySamples = latencySamples
        self.latencyRounds = latencyRounds
        self.samplesPerRun = samplesPerRun
        self.maximumGap = maximumGap
        self.applyTimeout = applyTimeout
        self.pollIntervalMicroseconds = pollIntervalMicroseconds
        self.wakeupSamples = wakeupSamples
    }

    /// About a minute on a 2-core machine.
    public static let full = BenchConfiguration(
        costRounds: 7, exitingRequests: 2_000, kickedRequests: 5_000, suppressedRequests: 200_000,
        mirrorReads: 1_000_000, latencySamples: 2_100, latencyRounds: 3, samplesPerRun: 250, maximumGap: .milliseconds(2),
        applyTimeout: .milliseconds(200), pollIntervalMicroseconds: 1_000, wakeupSamples: 2_000)

    /// A few seconds: every path and placement, few samples.
    public static let quick = BenchConfiguration(
        costRounds: 3, exitingRequests: 200, kickedRequests: 500, suppressedRequests: 20_000,
        mirrorReads: 100_000, latencySamples: 100, latencyRounds: 2, samplesPerRun: 50, maximumGap: .milliseconds(2),
        applyTimeout: .milliseconds(200), pollIntervalMicroseconds: 1_000, wakeupSamples: 200)

    /// Whether this is (at most) the quick configuration, for the report.
    public var isQuick: Bool { latencySamples <= Self.quick.latencySamples }
}
