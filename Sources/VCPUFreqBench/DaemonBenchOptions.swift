/// A VM size the benchmark runs: `vms` VMs of `vcpusPerVM` vCPUs each.
public struct VMShape: Codable, Hashable, Sendable, CustomStringConvertible {
    public var vms: Int
    public var vcpusPerVM: Int

    public init(vms: Int, vcpusPerVM: Int) {
        self.vms = vms
        self.vcpusPerVM = vcpusPerVM
    }

    public var totalVCPUs: Int { vms * vcpusPerVM }
    public var description: String { "\(vms)x\(vcpusPerVM)" }

    /// `"8x16"` → 8 VMs of 16 vCPUs.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: "x")
        guard parts.count == 2, let vms = Int(parts[0]), let vcpus = Int(parts[1]) else { return nil }
        self.init(vms: vms, vcpusPerVM: vcpus)
    }
}

/// Everything `vcpufreq bench daemon` can be told.
public struct DaemonBenchOptions: Sendable {
    public var quick: Bool
    public var shapes: [VMShape]
    /// Times each shape's paths run in turn (interleaved A/B): a burst of
    /// other work then lands on every path alike. Samples and the window
    /// are split between the rounds.
    public var rounds: Int
    /// Requests measured one at a time per path (kick → hint applied), over all rounds.
    public var latencySamples: Int
    /// Pause before each of those requests, so the daemon is asleep when it comes.
    public var latencyGapMicroseconds: Int
    /// Closed-loop throughput window per path (over all rounds), and the
    /// warm-up before it (each round).
    public var throughputSeconds: Double
    public var warmupSeconds: Double
    /// Window over which the daemon's CPU use is measured with no requests.
    public var idleSeconds: Double
    /// Requests made before the latency samples (caches, first-use paths).
    public var warmupRequests: Int
    /// How often the daemon polls on path 3 (`poll_interval_us`).
    public var pollIntervalMicroseconds: Int
    /// EEVDF slice the latency variant obtains (`latency_slice_us`).
    public var latencySliceMicroseconds: Int
    /// Also measure kick → applied with the generator and the daemon placed
    /// on the same CPU and on different CPUs.
    public var placementStudy: Bool
    /// The `vcpufreq` binary to run as the daemon.
    public var daemonExecutable: String
    /// The allocation counter library; nil = not counted.
    public var mallocCounterLibrary: String?
    /// Extra `serve` options for the daemon (e.g. `--busy-poll-us 300`), to
    /// compare daemon settings run against run.
    public var daemonArguments: [String] = []
    /// Where the socket, state directory, topology and logs go (a fresh
    /// directory is made inside); nil = /dev/shm when writable (tmpfs, like
    /// the daemon's default /run), else the temporary directory.
    public var workDirectory: String?

    /// Limits on what the options may ask: the daemon's own limits.
    public static let maximumTotalVCPUs = 1024
    public static let maximumVMs = 64

    /// The full run: 1, 8 and 64 VMs, small and 1024 vCPUs in total.
    public static let fullShapes = [
        VMShape(vms: 1, vcpusPerVM: 8), VMShape(vms: 1, vcpusPerVM: 1024),
        VMShape(vms: 8, vcpusPerVM: 8), VMShape(vms: 8, vcpusPerVM: 128),
        VMShape(vms: 64, vcpusPerVM: 2), VMShape(vms: 64, vcpusPerVM: 16),
    ]
    /// `--quick`: the same three VM counts, tiny, for a smoke test.
    public static let quickShapes = [
        VMShape(vms: 1, vcpusPerVM: 2), VMShape(vms: 8, vcpusPerVM: 2), VMShape(vms: 64, vcpusPerVM: 1),
    ]

    public init(quick: Bool, daemonExecutable: String, mallocCounterLibrary: String?) {
        self.quick = quick
        self.daemonExecutable = daemonExecutable
        self.mallocCounterLibrary = mallocCounterLibrary
        shapes = quick ? Self.quickShapes : Self.fullShapes
        rounds = quick ? 1 : 3
        latencySamples = quick ? 200 : 4200
        latencyGapMicroseconds = quick ? 20 : 200
        throughputSeconds = quick ? 0.15 : 2
        warmupSeconds = quick ? 0.05 : 0.2
        idleSeconds = quick ? 0.05 : 0.5
        warmupRequests = quick ? 20 : 200
        pollIntervalMicroseconds = 100
        latencySliceMicroseconds = 300
        placementStudy = !quick
    }

    /// Latency samples in each round.
    var latencySamplesPerRound: Int { (latencySamples + rounds - 1) / rounds }

    /// Every shape within the daemon's limits; nil when fine.
    public func problem() -> String? {
        if shapes.isEmpty { return "no VM shapes to run" }
        for shape in shapes {
            guard shape.vms >= 1, shape.vcpusPerVM >= 1 else { return "\(shape): need at least 1 VM and 1 vCPU" }
            guard shape.vms <= Self.maximumVMs else { return "\(shape): the daemon serves at most \(Self.maximumVMs) VMs" }
            guard shape.totalVCPUs <= Self.maximumTotalVCPUs else {
                return "\(shape): the daemon serves at most \(Self.maximumTotalVCPUs) vCPUs"
            }
        }
        if rounds < 1 { return "rounds must be positive" }
        if latencySamples < rounds { return "latency samples must be at least the rounds" }
        if throughputSeconds <= 0 { return "the throughput window must be positive" }
        if !(50...1_000_000).contains(pollIntervalMicroseconds) { return "poll interval must be 50...1000000 µs" }
        if !(100...100_000).contains(latencySliceMicroseconds) { return "latency slice must be 100...100000 µs" }
        return nil
    }
}
