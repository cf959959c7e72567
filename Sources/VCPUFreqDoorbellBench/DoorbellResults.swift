/// Everything one run of the doorbell benchmark measured: what
/// `results/doorbell.json` holds and the Markdown table and SVG chart are
/// drawn from. Times in µs unless a name says otherwise.
public struct DoorbellResults: Sendable, Codable {
    /// Bumped when a field changes meaning.
    public var schemaVersion = 1
    /// When the run ended (ISO 8601, UTC).
    public var date: String
    public var machine: MachineDescription
    /// /proc/loadavg's three averages before and after the run: the
    /// machine is shared, and its other work shows in the tails.
    public var loadAverageBefore = ""
    public var loadAverageAfter = ""
    public var settings: Settings
    public var calibration: Calibration
    /// The daemon's actuators as it reported them (what "applied" involved).
    public var daemonActuators: String
    public var daemonNotes: [String]
    /// What path 1's in-VMM device did over the whole run.
    public var inVMMDevice: InProcessDevice.Counts
    public var placements: [PlacementResults]
    /// The design's targets, judged in every placement.
    public var targets: [TargetVerdict]
    /// Where the time goes, derived from the numbers (see `Findings`).
    public var findings: [String]

    public struct Settings: Sendable, Codable {
        public var quick: Bool
        public var costRounds: Int
        public var exitingRequests: UInt32
        public var kickedRequests: UInt32
        public var suppressedRequests: UInt32
        public var mirrorReads: UInt32
        public var latencySamples: Int
        /// The daemon polls a suppressed slot this often (path 4's bound).
        public var pollIntervalMicroseconds: Int
        /// Mean guest work between timed requests.
        public var meanGapMicroseconds: Double
        /// A timed request not applied within this long is abandoned.
        public var applyTimeoutMicroseconds: Double
        /// The requests every path sends, alternately, kHz, and the util_min each must show.
        public var requestAKHz: UInt32
        public var requestBKHz: UInt32
        public var expectedUtilMinA: UInt32
        public var expectedUtilMinB: UInt32
    }

    public struct Calibration: Sendable, Codable {
        public var tsc: TSCCalibration
        public var spinNanosecondsPerIteration: Double
        /// What the two time stamps of a timed request add to it, ns (measured
        /// on path 4, timed minus untimed): the resolution floor of the latencies.
        public var timestampOverheadNanoseconds: Double
    }

    public init(
        date: String, machine: MachineDescription, settings: Settings, calibration: Calibration,
        daemonActuators: String, daemonNotes: [String], inVMMDevice: InProcessDevice.Counts,
        placements: [PlacementResults], targets: [TargetVerdict], findings: [String]
    ) {
        self.date = date
        self.machine = machine
        self.settings = settings
        self.calibration = calibration
        self.daemonActuators = daemonActuators
        self.daemonNotes = daemonNotes
        self.inVMMDevice = inVMMDevice
        self.placements = placements
        self.targets = targets
        self.findings = findings
    }

    public func placement(_ placement: Placement) -> PlacementResults? {
        placements.first { $0.placement == placement }
    }
}

/// All paths measured under one placement of the threads.
public struct PlacementResults: Sendable, Codable {
    public var placement: Placement
    public var vcpuCPUs: String
    public var daemonCPUs: String
    public var requests: [RequestResult]
    public var reads: [ReadResult]
    /// The host-only eventfd wake-up under this placement (`WakeupBaseline`).
    public var wakeup: LatencySummary?
    /// A doorbell store to an ioeventfd nobody waits on, µs per store: what
    /// KVM itself charges the vCPU for a kick, before any wake-up.
    public var idleKickMicroseconds: Double?
    /// The same with a port write (a PIO ioeventfd): what a port doorbell would cost.
    public var idlePortKickMicroseconds: Double?
    /// Path 3 without the latency flag (analysis only: the daemon changes no
    /// slice, so on a host without uclamp it makes no system call).
    public var kickWithoutSyscall: RequestResult?

    public init(
        placement: Placement, vcpuCPUs: String, daemonCPUs: String, requests: [RequestResult], reads: [ReadResult],
        wakeup: LatencySummary?, idleKickMicroseconds: Double? = nil, idlePortKickMicroseconds: Double? = nil,
        kickWithoutSyscall: RequestResult? = nil
    ) {
        self.kickWithoutSyscall = kickWithoutSyscall
        self.idleKickMicroseconds = idleKickMicroseconds
        self.idlePortKickMicroseconds = idlePortKickMicroseconds
        self.placement = placement
        self.vcpuCPUs = vcpuCPUs
        self.daemonCPUs = daemonCPUs
        self.requests = requests
        self.reads = reads
        self.wakeup = wakeup
    }

    public func request(_ kind: RequestPathKind) -> RequestResult? { requests.first { $0.path == kind } }
    public func read(_ kind: ReadPathKind) -> ReadResult? { reads.first { $0.path == kind } }
}

/// One request path under one placement.
public struct RequestResult: Sendable, Codable {
    public var path: RequestPathKind
    public var name: String
    public var title: String
    /// vCPU-side cost per request, back to back, not waiting: median of rounds.
    public var costMicroseconds: Double
    public var costRounds: [Double]
    /// × path 1's cost in the same placement.
    public var costRatioToPath1: Double?
    /// KVM exits to userspace per request (the VMM's exit counters).
    public var exitsPerRequest: Double
    /// Doorbell writes per request (a kick is no exit: KVM completes it).
    public var kicksPerRequest: Double
    /// Request → hint applied, timed requests spaced by random guest work.
    public var latency: LatencySummary?
    /// × path 1's latency p50 / p99 in the same placement.
    public var latencyRatioToPath1: LatencyRatios?
    /// The latency of requests A (3 GHz; on the shared page also
    /// latency-sensitive, so the daemon gives the vCPU thread a short EEVDF
    /// slice) and of requests B (1 GHz; the slice goes back) apart.
    public var latencyOfA: LatencySummary?
    public var latencyOfB: LatencySummary?
    /// The timed requests' own cost on the vCPU (until the store or kick
    /// returned), guest TSC: the cost of a request that finds the daemon asleep.
    public var spacedRequestCost: LatencySummary?
    /// Timed requests whose hint never showed within the apply timeout.
    public var abandoned: Int
    /// Exits and kicks per timed request (should equal the back-to-back figures).
    public var timedExitsPerRequest: Double
    public var timedKicksPerRequest: Double
    /// What the daemon counted per timed request (paths 2-5): requests it
    /// consumed, kicks it saw, polls it made, times it woke up.
    public var daemon: DaemonCounts?
    /// Where the CPUs' time went during the timed requests (`HostAccounting`).
    public var accounting: Accounting?
    /// The applied latency at fractions 1/200, 2/200, … 1 of the timed
    /// requests (nearest rank, µs): the whole distribution for the chart and
    /// for scripts, at a fixed size whatever the sample count.
    public var latencyQuantiles: [Double]

    /// Per timed request unless a name says otherwise.
    public struct Accounting: Sendable, Codable {
        /// The daemon's threads on a CPU.
        public var daemonCPUMicrosecondsPerRequest: Double
        /// The daemon's threads runnable but waiting for a CPU (after a wake-up).
        public var daemonRunQueueMicrosecondsPerRequest: Double
        /// The path's vCPU thread runnable but kept off a CPU (preempted).
        public var vcpuRunQueueMicrosecondsPerRequest: Double
        /// Share of all CPUs busy with processes other than the benchmark
        /// and its daemon during the loop (0...1; clock-tick resolution).
        public var otherLoadShare: Double
        /// Share of all CPUs stolen by this machine's own hypervisor (0...1).
        public var stealShare: Double
    }

    public struct LatencyRatios: Sendable, Codable {
        public var p50: Double
        public var p99: Double
    }

    public struct DaemonCounts: Sendable, Codable {
        public var requestsPerRequest: Double
        public var kicksPerRequest: Double
        public var pollsPerRequest: Double
        /// The daemon loop's wake-ups (STATUS `daemon.wakeups`), for any
        /// reason; nil in runs before it was counted.
        public var wakeupsPerRequest: Double?
    }
}

/// One way of reading cur_perf under one placement.
public struct ReadResult: Sendable, Codable {
    public var path: ReadPathKind
    public var name: String
    public var title: String
    public var costMicroseconds: Double
    public var costRounds: [Double]
    /// × the in-VMM MMIO read.
    public var ratioToMMIOInVMM: Double?
    public var exitsPerRead: Double
    /// The cur_perf the guest read, kHz (the same on every path).
    public var value: UInt64
}

/// One of the design's performance targets in one placement.
public struct TargetVerdict: Sendable, Codable {
    public var target: String
    public var placement: Placement
    public var value: Double
    public var limit: Double
    public var unit: String
    public var met: Bool
}
