import Foundation
import VCPUFreqBenchSupport
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqLinux

/// `vcpufreq bench scmi`: the SCMI device's cost per message beside the
/// forwarded-MMIO register path of `bench daemon`, in one run of one daemon.
/// One VM of `vcpus` vCPUs (one performance domain each) attaches over the
/// daemon's socket and is driven on path 1 (util_hint WRITE) by the daemon
/// benchmark's own generator; a second VM of the same profile is served over
/// `--vhost-user-scmi` and driven by `SCMIGenerator` playing QEMU and the
/// guest: LEVEL_SET one per kick, eight per kick, and LEVEL_GET. The rows
/// run in turn, `rounds` times over (interleaved), and add up.
public final class SCMIBenchmark {
    public struct Options: Sendable {
        public var quick: Bool
        public var vcpus = 8
        public var rounds: Int
        public var latencySamples: Int
        public var latencyGapMicroseconds: Int
        public var throughputSeconds: Double
        public var warmupSeconds: Double
        public var daemonExecutable: String
        public var mallocCounterLibrary: String?

        public init(quick: Bool, daemonExecutable: String, mallocCounterLibrary: String?) {
            self.quick = quick
            self.daemonExecutable = daemonExecutable
            self.mallocCounterLibrary = mallocCounterLibrary
            rounds = quick ? 1 : 3
            latencySamples = quick ? 160 : 3000
            latencyGapMicroseconds = quick ? 20 : 200
            throughputSeconds = quick ? 0.15 : 3
            warmupSeconds = quick ? 0.05 : 0.2
        }

        public func problem() -> String? {
            if !(1...64).contains(vcpus) { return "vCPUs must be 1...64" }
            if rounds < 1 || latencySamples < rounds * 8 { return "need at least one round and 8 latency samples per round" }
            if throughputSeconds <= 0 { return "the throughput window must be positive" }
            return nil
        }
    }

    public let options: Options
    let progress: (String) -> Void

    public init(options: Options, progress: @escaping (String) -> Void) {
        self.options = options
        self.progress = progress
    }

    /// The rows, in the order they run each round.
    static let rows: [(path: BenchPath, variant: BenchVariant, inFlight: Int?)] = [
        (.registerForwarding, .clamp, nil), (.scmiLevelSet, .clamp, 1), (.scmiLevelSetBatched, .clamp, 8), (.scmiLevelGet, .read, 1),
    ]

    public func run(command: String) throws -> SCMIBenchReport {
        if let problem = options.problem() { throw BenchError(problem) }
        let work = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : FileManager.default.temporaryDirectory.path
        let directory = "\(work)/vcpufreq-bench-scmi-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            let report = try run(command: command, directory: directory)
            try? FileManager.default.removeItem(atPath: directory)
            return report
        } catch let error as BenchError {
            throw BenchError("\(error.description)\n(daemon log and topology kept in \(directory))")
        }
    }

    private func run(command: String, directory: String) throws -> SCMIBenchReport {
        let machine = MachineDescription.current()
        let loadBefore = MachineDescription.loadAverages()
        let vcpus = options.vcpus
        let topology = BenchTopology(hostCPUs: machine.onlineCPUList, vcpuCounts: [vcpus], pollIntervalMicroseconds: 1000, latencySliceMicroseconds: 300)
        try topology.text.write(toFile: directory + "/topology.toml", atomically: true, encoding: .utf8)
        let profile = BenchTopology.kickProfile(vcpus: vcpus)

        let threads = IdleThreads(count: 2 * vcpus)
        defer { threads.stop() }
        let registerTIDs = Array(threads.threadIDs[0..<vcpus]), scmiTIDs = Array(threads.threadIDs[vcpus...])
        let vhostSocket = directory + "/scmi.sock"
        var counters: MallocCounterFile?
        var preload: (library: String, counterFile: String)?
        var allocationCounting = "not counted: \(MallocCounterFile.libraryFileName) not found (build it with `swift build`, or pass --malloc-counter)"
        if let library = options.mallocCounterLibrary {
            let file = try MallocCounterFile(path: directory + "/malloc-counters")
            counters = file
            preload = (library, file.path)
            allocationCounting = "LD_PRELOAD \(library)"
        }
        progress("starting the daemon with --vhost-user-scmi \(vhostSocket)")
        let daemon = try DaemonProcess(
            executable: options.daemonExecutable, topologyPath: directory + "/topology.toml", socketPath: directory + "/daemon.sock",
            stateDirectory: directory + "/state", logPath: directory + "/daemon.log", preload: preload,
            extraArguments: ["--vhost-user-scmi", "\(vhostSocket)=\(profile),name=bench-scmi,tids=\(scmiTIDs.map(String.init).joined(separator: ":"))"])
        defer { _ = daemon.stop() }
        if let file = counters, file.countingProcessID != daemon.pid {
            allocationCounting = "not counted: the preloaded counter did not start in the daemon (pid \(daemon.pid))"
            counters = nil
        }

        let vm = try EmulatedVM(socketPath: daemon.socketPath, name: "bench-register", profile: profile, threadIDs: registerTIDs)
        defer { vm.detach() }
        let registers = LoadGenerator(vms: [vm], sliceMicroseconds: 300)
        let frontEnd: VhostUserFrontEnd
        do { frontEnd = try VhostUserFrontEnd(path: vhostSocket) } catch { throw BenchError("vhost-user front-end: \(error)") }
        let levels = BenchTopology.frequenciesKHz.map(UInt32.init)
        let scmi = SCMIGenerator(frontEnd: frontEnd, domains: vcpus, lowKHz: levels.first!, highKHz: levels.last!)
        let allocationsBefore = counters?.read().allocations

        var sums = Array(repeating: RowMeasurement(), count: Self.rows.count)
        let perRound = (options.latencySamples + options.rounds - 1) / options.rounds
        let window = UInt64(options.throughputSeconds / Double(options.rounds) * 1e9), warmup = UInt64(options.warmupSeconds * 1e9)
        for round in 0..<options.rounds {
            for (index, row) in Self.rows.enumerated() {
                progress("round \(round + 1)/\(options.rounds): \(row.path.title)")
                var measured = RowMeasurement()
                let countsBefore = try scmiCounts(daemon)
                // Warm-up: every vCPU / domain once at least (first use may allocate).
                let warmupAllocations = counters?.read()
                if let inFlight = row.inFlight {
                    _ = try scmi.measureLatency(path: row.path, samples: 8 * max(inFlight, vcpus), gapMicroseconds: 0)
                } else {
                    _ = try registers.measureLatency(path: row.path, variant: row.variant, samples: 4 * vcpus, gapMicroseconds: 0, yieldWhileWaiting: true)
                }
                measured.warmupAllocations = counters.flatMap { file in warmupAllocations.map { file.read().since($0).allocations } }
                let latencyAllocations = counters?.read(), latencyUsage = daemon.usage()
                if row.inFlight != nil {
                    measured.latency = try scmi.measureLatency(path: row.path, samples: perRound, gapMicroseconds: options.latencyGapMicroseconds)
                } else {
                    measured.latency = try registers.measureLatency(
                        path: row.path, variant: row.variant, samples: perRound, gapMicroseconds: options.latencyGapMicroseconds, yieldWhileWaiting: true)
                }
                measured.latencyAllocations = counters.flatMap { file in latencyAllocations.map { file.read().since($0) } }
                measured.latencyUsage = daemon.usage().flatMap { after in latencyUsage.map { after.since($0) } }
                var start: (MallocCounts?, ThreadUsage?) = (nil, nil), end: (MallocCounts?, ThreadUsage?) = (nil, nil)
                let starts = { start = (counters?.read(), daemon.usage()) }
                let ends = { end = (counters?.read(), daemon.usage()) }
                let result: LoadGenerator.ThroughputResult
                if let inFlight = row.inFlight {
                    result = try scmi.measureThroughput(
                        path: row.path, inFlight: row.path == .scmiLevelSetBatched ? vcpus : inFlight, warmupNanoseconds: warmup,
                        windowNanoseconds: window, windowStarts: starts, windowEnds: ends)
                } else {
                    result = try registers.measureThroughput(
                        path: row.path, variant: row.variant, warmupNanoseconds: warmup, windowNanoseconds: window, yieldWhileWaiting: true,
                        windowStarts: starts, windowEnds: ends)
                }
                measured.completed = result.completed
                measured.windowNanoseconds = result.windowNanoseconds
                measured.loaded = result.latency
                measured.generatorCPUNanoseconds = result.generatorCPUNanoseconds
                measured.allocations = end.0.flatMap { e in start.0.map { e.since($0) } }
                measured.usage = end.1.flatMap { e in start.1.map { e.since($0) } }
                if row.inFlight != nil {
                    measured.daemonCounted = try scmiCounts(daemon).flatMap { after in countsBefore.map { after.since($0) } }
                }
                sums[index].add(measured)
            }
        }
        if scmi.failures > 0 { throw BenchError("\(scmi.failures) of \(scmi.sent) SCMI commands were not answered SUCCESS") }
        var rows: [DaemonBenchReport.Row] = []
        for (sum, row) in zip(sums, Self.rows) {
            guard var result = sum.row(shape: VMShape(vms: 1, vcpusPerVM: vcpus), path: row.path, variant: row.variant) else {
                throw BenchError("\(row.path.title): no latency samples")
            }
            result.generatorIssued = row.inFlight == nil ? 0 : result.daemonCounted?.requests ?? 0
            rows.append(result)
        }
        DaemonBenchmark.fillRatios(&rows)
        let warnings = daemon.warnings()
        var notes: [String] = []
        #if DEBUG
            notes.append("DEBUG BUILD: the daemon allocates in unspecialized generics; measure with `swift build -c release`.")
        #endif
        if let file = counters, let before = allocationsBefore {
            let windows = rows.reduce(UInt64(0)) { $0 &+ ($1.allocations?.allocations ?? 0) }
            let warmups = rows.reduce(UInt64(0)) { $0 &+ ($1.warmupAllocations ?? 0) }
            let samples = sums.reduce(UInt64(0)) { $0 &+ ($1.latencyAllocations?.allocations ?? 0) }
            notes.append(
                "allocation counter live: \(before) allocations before the first measurement (start-up, attach); "
                    + "\(warmups) in the warm-ups, \(samples) while the latency samples ran, \(windows) in the throughput windows; "
                    + "\(file.read().allocations) in all (the rest: the STATUS requests between rows that read the device's counts)")
        }
        return SCMIBenchReport(
            command: command, date: ISO8601DateFormatter().string(from: Date()), quick: options.quick, build: DaemonBenchmark.buildConfiguration,
            machine: machine, loadAverageBefore: loadBefore, loadAverageAfter: MachineDescription.loadAverages(),
            allocationCounting: allocationCounting, vcpus: vcpus, rounds: options.rounds, latencySamples: perRound * options.rounds,
            latencyGapMicroseconds: options.latencyGapMicroseconds, throughputSeconds: options.throughputSeconds,
            levelsKHz: [levels.first!, levels.last!], rows: rows, notes: notes, warnings: warnings)
    }

    /// The SCMI device's messages and kicks so far (STATUS, outside any window).
    private func scmiCounts(_ daemon: DaemonProcess) throws -> DaemonBenchReport.DaemonCounts? {
        let json: [UInt8]
        do { json = try VCPUFreqClient(socketPath: daemon.socketPath, clientName: "vcpufreq-bench-status").statusJSON(allVMs: true) } catch {
            throw BenchError("STATUS failed: \(error)")
        }
        guard let document = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let vms = document["vms"] as? [[String: Any]],
            let scmi = vms.first(where: { $0["name"] as? String == "bench-scmi" })?["scmi"] as? [String: Any]
        else { return nil }
        func value(_ key: String) -> UInt64 { (scmi[key] as? NSNumber)?.uint64Value ?? 0 }
        return DaemonBenchReport.DaemonCounts(requests: value("messages"), kicks: value("kicks"), polls: 0, actuationErrors: value("errors"))
    }
}

/// What one `vcpufreq bench scmi` run measured (JSON and Markdown).
public struct SCMIBenchReport: Codable, Sendable {
    public var command: String
    public var date: String
    public var quick: Bool
    public var build: String
    public var machine: MachineDescription
    public var loadAverageBefore: [Double]
    public var loadAverageAfter: [Double]
    public var allocationCounting: String
    public var vcpus: Int
    public var rounds: Int
    public var latencySamples: Int
    public var latencyGapMicroseconds: Int
    public var throughputSeconds: Double
    /// The two levels LEVEL_SETs alternate between.
    public var levelsKHz: [UInt32]
    /// Path 1 and the SCMI rows; `ratios` against path 1. For SCMI rows
    /// `daemonCounted.requests` is the device's message count over the row.
    public var rows: [DaemonBenchReport.Row]
    public var notes: [String]
    public var warnings: [String]

    public var markdown: String {
        typealias R = DaemonBenchReport
        var out = ["# vcpufreq SCMI benchmark", ""]
        out.append("`\(command)` — \(date), \(build) build\(quick ? ", **quick run** (smoke test sizes)" : "").")
        out.append("")
        out.append(
            "- Machine: \(machine.summary); load average \(loadAverageBefore.map { R.number($0, 2) }.joined(separator: " ")) before, "
                + "\(loadAverageAfter.map { R.number($0, 2) }.joined(separator: " ")) after")
        out.append("- Allocations: \(allocationCounting)")
        out.append(
            "- One daemon, two VMs of \(vcpus) vCPUs (one performance domain each, idle threads as vCPU threads): one attached over the "
                + "daemon's socket and driven on path 1 (util_hint WRITE, as `bench daemon`), one served over `--vhost-user-scmi` with this process "
                + "playing QEMU and the guest. LEVEL_SETs alternate each domain between \(levelsKHz.map(String.init).joined(separator: " and ")) kHz, "
                + "so every one moves a hint. Latency: \(latencySamples) requests one at a time, \(latencyGapMicroseconds / 2)–\(latencyGapMicroseconds * 3 / 2) µs "
                + "apart; path 1 until the shared page shows the clamp, SCMI from post + kick until the device's interrupt (signalled after the hints "
                + "are applied). Throughput: closed loop (path 1 and 4b: every vCPU/domain one outstanding; 4 and 5: one command at a time), "
                + "\(R.number(throughputSeconds, 2)) s in all. The rows run in turn \(rounds) time(s) over and add up.")
        out.append("")
        out.append("| path | request | req/s | p50 µs | p99 µs | loaded p50 µs | loaded p99 µs | allocs/req | daemon CPU µs/req | daemon wake-ups/req | req/s ÷ path 1 | p50 ÷ path 1 | CPU/req ÷ path 1 |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows {
            let cells = [
                row.path.title, row.variant.title, R.number(row.requestsPerSecond, 0), R.number(row.latency.p50Microseconds, 1),
                R.number(row.latency.p99Microseconds, 1), R.optional(row.loadedLatency?.p50Microseconds, 1),
                R.optional(row.loadedLatency?.p99Microseconds, 1), R.optional(row.allocationsPerRequest, 3),
                R.optional(row.daemonCPUMicrosecondsPerRequest, 2), R.optional(row.daemonWakeupsPerRequest, 2),
                R.optional(row.ratios?.requestsPerSecond, 2), R.optional(row.ratios?.p50, 2), R.optional(row.ratios?.daemonCPUPerRequest, 2),
            ]
            out.append("| " + cells.joined(separator: " | ") + " |")
        }
        let scmiRows = rows.filter { $0.path != .registerForwarding }
        out.append("")
        out.append(
            "SCMI messages the daemon counted over each row (warm-up, samples, window, drain): "
                + scmiRows.map { "\($0.path.title) \($0.daemonCounted?.requests ?? 0) (errors \($0.daemonCounted?.actuationErrors ?? 0))" }
                .joined(separator: "; ") + ".")
        out += R.notesSection(notes, daemonWarnings: warnings)
        return out.joined(separator: "\n") + "\n"
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
