import VCPUFreqBenchSupport

/// Everything one `vcpufreq bench daemon` run measured; written as JSON and
/// rendered as Markdown (`markdown`).
public struct DaemonBenchReport: Codable, Sendable {
    public var command: String
    /// ISO 8601, UTC.
    public var date: String
    public var quick: Bool
    /// "release" or "debug" (debug builds allocate in unspecialized generics:
    /// only release numbers mean anything).
    public var build: String
    public var machine: MachineDescription
    /// /proc/loadavg (1, 5, 15 min) before and after the run: other work on
    /// the machine shows up in the tails.
    public var loadAverageBefore: [Double]
    public var loadAverageAfter: [Double]
    public var daemon: DaemonDescription
    public var settings: Settings
    public var shapes: [ShapeResult]
    public var rows: [Row]
    public var placement: [PlacementRow]
    public var notes: [String]

    public struct DaemonDescription: Codable, Sendable {
        /// The actuators the daemon chose (ATTACH_OK), e.g. `clamp=none latency=slice affinity=off`.
        public var actuators: String
        /// How allocations were counted, or why they were not.
        public var allocationCounting: String
        /// Allocations the daemon made from start until the first measurement
        /// (proof the counter was live: start-up and attach allocate).
        public var allocationsBeforeMeasuring: UInt64?
        /// Allocations made inside the measurement windows (steady state).
        public var windowAllocationsRecorded: UInt64?
        /// Their call stacks grouped and named, most frequent first.
        public var allocationSites: [AllocationSite]
        /// Call sites of the allocations during warm-ups: first use of a
        /// vCPU or VM on a path (not per request).
        public var firstUseAllocationSites: [AllocationSite]
        /// /proc/<tid>/sched `se.slice` of a vCPU thread after a
        /// latency-sensitive request: the slice syscall really happened.
        public var observedSliceNanoseconds: UInt64?
        /// Warnings and errors the daemon logged during the run.
        public var warnings: [String]
    }

    public struct Settings: Codable, Sendable {
        /// Each shape's paths ran this many times in turn; rows add the rounds up.
        public var rounds: Int
        public var latencySamples: Int
        public var latencyGapMicroseconds: Int
        public var throughputSeconds: Double
        public var warmupSeconds: Double
        public var pollIntervalMicroseconds: Int
        public var latencySliceMicroseconds: Int
        public var lowUtilization: UInt32
        public var highUtilization: UInt32
    }

    /// Per VM shape: what costs no request.
    public struct ShapeResult: Codable, Sendable {
        public var vms: Int
        public var vcpusPerVM: Int
        /// Time to connect, attach and map every VM (kick profile).
        public var attachSeconds: Double
        /// Daemon CPU use with every VM attached and no requests: with kicks
        /// (should be ~0) and with polling (the price of suppressed kicks).
        public var idleDaemonCPUPercentKicked: Double?
        public var idleDaemonCPUPercentPolled: Double?
        /// Times per second the idle daemon's loop woke up (epoll_wait returned).
        public var idleDaemonWakeupsPerSecondKicked: Double?
        public var idleDaemonWakeupsPerSecondPolled: Double?

        public init(vms: Int, vcpusPerVM: Int, attachSeconds: Double) {
            self.vms = vms
            self.vcpusPerVM = vcpusPerVM
            self.attachSeconds = attachSeconds
        }
    }

    public struct Row: Codable, Sendable {
        public var vms: Int
        public var vcpusPerVM: Int
        public var path: BenchPath
        public var variant: BenchVariant
        /// Allocations during the warm-up (at least one request per vCPU):
        /// first-use allocations show here, not in the steady-state columns.
        public var warmupAllocations: UInt64?
        /// One request at a time, the daemon asleep before each: kick → hint applied.
        public var latency: HistogramSummary
        /// Allocations per request over the latency samples.
        public var latencyAllocationsPerRequest: Double?
        /// Daemon CPU per request over the latency samples, µs (includes its wake-up).
        public var latencyDaemonCPUMicrosecondsPerRequest: Double?
        /// Closed loop, every vCPU loading the daemon.
        public var requestsPerSecond: Double
        public var loadedLatency: HistogramSummary?
        /// Steady state (after warm-up), over the throughput window.
        public var allocationsPerRequest: Double?
        public var allocations: MallocCounts?
        public var daemonCPUMicrosecondsPerRequest: Double?
        /// Times the daemon's loop slept per request (1 = one epoll wake-up each; < 1 = batching).
        public var daemonWakeupsPerRequest: Double?
        public var daemonCPUPercent: Double?
        public var generatorCPUPercent: Double?
        public var doorbellWritesPerRequest: Double
        /// The daemon's own counters over the whole row (warm-up, samples, window, drain).
        public var daemonCounted: DaemonCounts?
        public var generatorIssued: UInt64
        /// This row ÷ path 1 (utilization only) of the same shape.
        public var ratios: Ratios?
    }

    public struct DaemonCounts: Codable, Sendable {
        public var requests: UInt64
        public var kicks: UInt64
        public var polls: UInt64
        public var actuationErrors: UInt64
    }

    public struct Ratios: Codable, Sendable {
        public var requestsPerSecond: Double?
        public var p50: Double?
        public var p99: Double?
        public var daemonCPUPerRequest: Double?
    }

    public struct PlacementRow: Codable, Sendable {
        public var placement: BenchPlacement
        public var path: BenchPath
        public var latency: HistogramSummary
        public var daemonCPUMicrosecondsPerRequest: Double?
    }
}
