import VCPUFreqBenchSupport
import VCPUFreqKVM

/// Everything one run of `vcpufreq bench workload` measured: what
/// workload.json holds and the Markdown and SVG are drawn from. The table
/// part (`configurations`, `tests[].name`, `tests[].results[]` with
/// `configuration`, `score`, `delta_percent`, `ci95_percent`) is the
/// promised interface for scripts; the rest documents how it came about.
public struct WorkloadResults: Sendable, Codable {
    /// Bumped when a field changes meaning.
    public static let currentSchemaVersion = 1

    public enum Mode: String, Sendable, Codable {
        /// The five guest tests on the reference VMM.
        case guest
        /// An external benchmark (`--command`).
        case command
    }

    public var schemaVersion = Self.currentSchemaVersion
    public var mode: Mode
    public var date: String
    /// uptime(1)'s line at the start and at the end: the load the numbers were measured under.
    public var uptimeBefore: String
    public var uptimeAfter: String
    public var machine: MachineDescription
    public var settings: Settings
    /// What competed with the VM (`Contention.description`).
    public var contention: String
    public var calibration: Calibration?
    public var configurations: [ConfigurationInfo]
    /// Per test, then the Weighted Total (guest mode).
    public var tests: [TestRow]
    /// Where the time went, per configuration over all its runs.
    public var summaries: [ConfigurationSummary]
    /// Energy, frequency and sched_ext on this host: what they were or why not.
    public var host: HostFacilities
    /// Every run, in the order they ran.
    public var runs: [RunRecord]
    public var notes: [String]

    public init(
        mode: Mode, date: String, uptimeBefore: String, uptimeAfter: String, machine: MachineDescription,
        settings: Settings, contention: String, calibration: Calibration?, configurations: [ConfigurationInfo],
        tests: [TestRow], summaries: [ConfigurationSummary], host: HostFacilities, runs: [RunRecord], notes: [String]
    ) {
        self.mode = mode
        self.date = date
        self.uptimeBefore = uptimeBefore
        self.uptimeAfter = uptimeAfter
        self.machine = machine
        self.settings = settings
        self.contention = contention
        self.calibration = calibration
        self.configurations = configurations
        self.tests = tests
        self.summaries = summaries
        self.host = host
        self.runs = runs
        self.notes = notes
    }

    public struct Settings: Sendable, Codable, Equatable {
        public var quick: Bool
        public var rounds: Int
        public var contention: Contention
        public var vcpus: Int
        public var seed: UInt64
        /// Guest mode: each test's program length per vCPU.
        public var secondsPerTest: Double?
        /// Guest mode: the guest's scheduler tick, PELT period and schedutil rate limit.
        public var tickMicroseconds: Double?
        public var peltPeriodMicroseconds: Double?
        public var rateLimitMicroseconds: Double?
        /// The frequency table the guest sees, kHz.
        public var tableKHz: [UInt32]
        /// Extra `serve` options of the benchmark's daemon.
        public var daemonArguments: [String]
        /// Command mode: the command and the expression its score is read with.
        public var command: String?
        public var scoreRegex: String?

        public init(
            quick: Bool, rounds: Int, contention: Contention, vcpus: Int, seed: UInt64, secondsPerTest: Double? = nil,
            tickMicroseconds: Double? = nil, peltPeriodMicroseconds: Double? = nil, rateLimitMicroseconds: Double? = nil,
            tableKHz: [UInt32], daemonArguments: [String], command: String? = nil, scoreRegex: String? = nil
        ) {
            self.quick = quick
            self.rounds = rounds
            self.contention = contention
            self.vcpus = vcpus
            self.seed = seed
            self.secondsPerTest = secondsPerTest
            self.tickMicroseconds = tickMicroseconds
            self.peltPeriodMicroseconds = peltPeriodMicroseconds
            self.rateLimitMicroseconds = rateLimitMicroseconds
            self.tableKHz = tableKHz
            self.daemonArguments = daemonArguments
            self.command = command
            self.scoreRegex = scoreRegex
        }
    }

    public struct Calibration: Sendable, Codable, Equatable {
        public var tsc: TSCCalibration
        public var spinNanosecondsPerIteration: Double
        /// The memory loop's rate on the calibration vCPU: read-modify-writes per µs.
        public var memoryIterationsPerMicrosecond: Double
        public var bufferBytes: UInt64

        public init(
            tsc: TSCCalibration, spinNanosecondsPerIteration: Double, memoryIterationsPerMicrosecond: Double,
            bufferBytes: UInt64
        ) {
            self.tsc = tsc
            self.spinNanosecondsPerIteration = spinNanosecondsPerIteration
            self.memoryIterationsPerMicrosecond = memoryIterationsPerMicrosecond
            self.bufferBytes = bufferBytes
        }
    }

    public struct ConfigurationInfo: Sendable, Codable, Equatable {
        public var name: String
        public var summary: String
        /// Whether it ran; when not, `note` says why.
        public var ran: Bool
        public var note: String?
        /// The hint mechanisms really used (the daemon's STATUS, or the in-VMM device's).
        public var actuators: String?

        public init(name: String, summary: String, ran: Bool, note: String? = nil, actuators: String? = nil) {
            self.name = name
            self.summary = summary
            self.ran = ran
            self.note = note
            self.actuators = actuators
        }
    }

    public struct HostFacilities: Sendable, Codable, Equatable {
        /// "RAPL zones ..." or "not on this host (...)".
        public var energy: String
        public var frequencyResidency: String
        public var schedExt: String

        public init(energy: String, frequencyResidency: String, schedExt: String) {
            self.energy = energy
            self.frequencyResidency = frequencyResidency
            self.schedExt = schedExt
        }
    }

    public func configuration(_ name: String) -> ConfigurationInfo? { configurations.first { $0.name == name } }
    public func row(_ name: String) -> TestRow? { tests.first { $0.name == name } }
    public func summary(_ name: String) -> ConfigurationSummary? { summaries.first { $0.configuration == name } }
    /// The configurations that ran, in table order.
    public var ranConfigurations: [String] { configurations.filter(\.ran).map(\.name) }
}

/// One run: one test (or one invocation of the external command) in one
/// configuration in one round.
public struct RunRecord: Sendable, Codable, Equatable {
    public var configuration: String
    public var test: String
    public var round: Int
    /// The raw figure (`TestOutcome.raw`, or the external score); nil when the run failed.
    public var raw: Double?
    public var failure: String?
    /// Guest mode: what the guest's records gave.
    public var outcome: TestOutcome?
    public var cost: RunCost

    public init(
        configuration: String, test: String, round: Int, raw: Double?, failure: String? = nil,
        outcome: TestOutcome? = nil, cost: RunCost
    ) {
        self.configuration = configuration
        self.test = test
        self.round = round
        self.raw = raw
        self.failure = failure
        self.outcome = outcome
        self.cost = cost
    }
}

/// What a run cost the host, and what the guest and the daemon did in it.
public struct RunCost: Sendable, Codable, Equatable {
    public var wallSeconds: Double = 0
    /// CPU time of the VM's threads (the vCPU threads; in command mode the command's processes).
    public var guestThreadSeconds: Double = 0
    /// CPU time of every daemon thread (0 without a daemon).
    public var daemonSeconds: Double = 0
    /// Package energy (RAPL), J; nil where the host has none.
    public var energyJoules: Double?
    /// Time-weighted mean frequency of all CPUs (cpufreq stats), MHz; nil where the host has none.
    public var meanFrequencyMegahertz: Double?
    /// Requests the guests' drivers sent (set_perf stores or shared-page publishes).
    public var guestRequests: UInt64 = 0
    /// Doorbell stores the guests made.
    public var guestKicks: UInt64 = 0
    /// Scheduler ticks (each one a cur_perf read, where there is a device).
    public var guestTicks: UInt64 = 0
    /// Idle stores, and the time the vCPU threads slept in them.
    public var idleStores: UInt64 = 0
    public var idleSleepSeconds: Double = 0
    /// MMIO exits to the VMM (cur_perf reads and set_perf writes that exited).
    public var mmioReads: UInt64 = 0
    public var mmioWrites: UInt64 = 0
    /// The daemon's counters for the VM over the run (requests consumed, kicks seen, polls).
    public var daemonRequests: UInt64?
    public var daemonKicks: UInt64?
    public var daemonPolls: UInt64?
    /// vcpufreq-bpf-map: vCPUs whose slot, after the run, has a `sched_seen`
    /// word showing a utilization the host's BPF programs read (only they
    /// write it), and those whose last read was rejected; nil elsewhere.
    public var schedulerSeenVCPUs: Int?
    public var schedulerRejectedVCPUs: Int?

    public init() {}

    public var cpuSeconds: Double { guestThreadSeconds + daemonSeconds }
}

/// Where the time went in one configuration, over all its runs.
public struct ConfigurationSummary: Sendable, Codable, Equatable {
    public var configuration: String
    public var runs: Int
    public var failedRuns: Int
    public var wallSeconds: Double
    public var guestThreadSeconds: Double
    public var daemonSeconds: Double
    public var guestRequestsPerSecond: Double
    public var mmioExitsPerSecond: Double
    public var guestKicksPerSecond: Double
    /// The share of the vCPUs' wall time their threads slept in idle stores.
    public var idleSleepShare: Double
    /// Release → running of interactive jobs, µs, over every run.
    public var interactiveStartDelay: LatencySummary?
    /// Jobs with a deadline that met it, over every run (nil without any).
    public var deadlineMetPercent: Double?
    public var energyJoules: Double?
    public var meanFrequencyMegahertz: Double?

    public init(
        configuration: String, runs: Int, failedRuns: Int, wallSeconds: Double, guestThreadSeconds: Double,
        daemonSeconds: Double, guestRequestsPerSecond: Double, mmioExitsPerSecond: Double,
        guestKicksPerSecond: Double, idleSleepShare: Double, interactiveStartDelay: LatencySummary?,
        deadlineMetPercent: Double?, energyJoules: Double?, meanFrequencyMegahertz: Double?
    ) {
        self.configuration = configuration
        self.runs = runs
        self.failedRuns = failedRuns
        self.wallSeconds = wallSeconds
        self.guestThreadSeconds = guestThreadSeconds
        self.daemonSeconds = daemonSeconds
        self.guestRequestsPerSecond = guestRequestsPerSecond
        self.mmioExitsPerSecond = mmioExitsPerSecond
        self.guestKicksPerSecond = guestKicksPerSecond
        self.idleSleepShare = idleSleepShare
        self.interactiveStartDelay = interactiveStartDelay
        self.deadlineMetPercent = deadlineMetPercent
        self.energyJoules = energyJoules
        self.meanFrequencyMegahertz = meanFrequencyMegahertz
    }

    /// Adds up `runs` of `configuration`; `startDelays` are the interactive
    /// jobs' release → running samples of those runs, µs.
    public static func of(
        _ configuration: String, runs: [RunRecord], vcpus: Int, startDelays: [Double]
    ) -> ConfigurationSummary {
        let mine = runs.filter { $0.configuration == configuration }
        let done = mine.filter { $0.raw != nil }
        let wall = done.reduce(0) { $0 + $1.cost.wallSeconds }
        func perSecond(_ value: (RunCost) -> UInt64) -> Double {
            wall > 0 ? Double(done.reduce(UInt64(0)) { $0 + value($1.cost) }) / wall : 0
        }
        let deadlines = done.compactMap(\.outcome).reduce((0, 0)) { ($0.0 + $1.metJobs, $0.1 + $1.deadlineJobs) }
        let energy = done.compactMap(\.cost.energyJoules)
        let frequency = done.compactMap(\.cost.meanFrequencyMegahertz)
        let vcpuSeconds = wall * Double(max(vcpus, 1))
        return ConfigurationSummary(
            configuration: configuration, runs: mine.count, failedRuns: mine.count - done.count, wallSeconds: wall,
            guestThreadSeconds: done.reduce(0) { $0 + $1.cost.guestThreadSeconds },
            daemonSeconds: done.reduce(0) { $0 + $1.cost.daemonSeconds },
            guestRequestsPerSecond: perSecond(\.guestRequests),
            mmioExitsPerSecond: perSecond { $0.mmioReads + $0.mmioWrites }, guestKicksPerSecond: perSecond(\.guestKicks),
            idleSleepShare: vcpuSeconds > 0 ? done.reduce(0) { $0 + $1.cost.idleSleepSeconds } / vcpuSeconds : 0,
            interactiveStartDelay: LatencySummary(startDelays),
            deadlineMetPercent: deadlines.1 > 0 ? 100 * Double(deadlines.0) / Double(deadlines.1) : nil,
            energyJoules: energy.count == done.count && !energy.isEmpty ? energy.reduce(0, +) : nil,
            meanFrequencyMegahertz: frequency.isEmpty ? nil : frequency.reduce(0, +) / Double(frequency.count))
    }
}
