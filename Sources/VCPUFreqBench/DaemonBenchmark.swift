import Foundation
import VCPUFreqBenchSupport
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqLinux

/// `vcpufreq bench daemon`: starts the real daemon as a child process and,
/// acting as 1, 8 or 64 VMMs in this process, loads it over the real socket
/// and shared pages on the three request paths side by side, measuring
/// requests/s, kick → hint applied latency, the daemon's CPU and wake-ups
/// and (with the LD_PRELOAD counter) its allocations per request.
public final class DaemonBenchmark {
    public let options: DaemonBenchOptions
    let progress: ProgressReporter

    public init(options: DaemonBenchOptions, progress: ProgressReporter) {
        self.options = options
        self.progress = progress
    }

    // Per run, set up by `run`.
    var daemon: DaemonProcess!
    var counters: MallocCounterFile?
    var threads: IdleThreads!
    var socketPath = ""
    var actuators = ""
    var allocationsBeforeMeasuring: UInt64?
    var observedSlice: UInt64?
    /// `se.slice` of the daemon's loop after the placement study gave it a short slice.
    var daemonSliceObserved: UInt64?
    /// Call stacks of allocations in warm-ups (first use) and in measurement
    /// windows (steady state), at most `stacksKept` of each.
    var warmupStacks: [[UInt64]] = []
    var windowStacks: [[UInt64]] = []
    var windowAllocations: UInt64 = 0
    static let stacksKept = 512

    /// Runs everything and returns the report. The daemon is stopped whatever
    /// happens; the work directory is removed, unless the run failed.
    public func run(command: String) throws -> DaemonBenchReport {
        if let problem = options.problem() { throw BenchError(problem) }
        let work = try makeWorkDirectory()
        do {
            let report = try run(command: command, work: work)
            try? FileManager.default.removeItem(atPath: work)
            return report
        } catch let error as BenchError {
            // Kept for a post-mortem: the daemon's log, topology and socket.
            var message = error.description
            if let daemon, let ended = daemon.process.termination {
                message += "\nthe daemon died (\(ended)); its log says:\n\(daemon.deathNotice())"
            }
            throw BenchError("\(message)\n(daemon log and topology kept in \(work))")
        }
    }

    private func run(command: String, work: String) throws -> DaemonBenchReport {
        let machine = MachineDescription.current()
        let loadBefore = MachineDescription.loadAverages()

        var profileSizes = options.shapes.map(\.vcpusPerVM)
        if options.placementStudy { profileSizes.append(1) }
        let topology = BenchTopology(
            hostCPUs: machine.onlineCPUList, vcpuCounts: profileSizes,
            pollIntervalMicroseconds: options.pollIntervalMicroseconds,
            latencySliceMicroseconds: options.latencySliceMicroseconds)
        let topologyPath = work + "/topology.toml"
        try topology.text.write(toFile: topologyPath, atomically: true, encoding: .utf8)

        var allocationCounting: String
        var preload: (library: String, counterFile: String)?
        if let library = options.mallocCounterLibrary {
            let file = try MallocCounterFile(path: work + "/malloc-counters")
            counters = file
            preload = (library, file.path)
            allocationCounting = "LD_PRELOAD \(library)"
        } else {
            allocationCounting = "not counted: \(MallocCounterFile.libraryFileName) not found (build it with `swift build`, or pass --malloc-counter)"
        }

        socketPath = work + "/daemon.sock"
        progress.note("starting the daemon: \(options.daemonExecutable) serve (work directory \(work))")
        daemon = try DaemonProcess(
            executable: options.daemonExecutable, topologyPath: topologyPath, socketPath: socketPath,
            stateDirectory: work + "/state", logPath: work + "/daemon.log", preload: preload,
            extraArguments: options.daemonArguments)
        defer { daemon.stop() }
        progress.note("daemon pid \(daemon.pid) listening on \(socketPath)")
        if let counters {
            if counters.countingProcessID != daemon.pid {
                allocationCounting = "not counted: the preloaded counter did not start in the daemon (pid \(daemon.pid))"
                self.counters = nil
            }
        }

        let threadCount = max(options.shapes.map(\.totalVCPUs).max() ?? 1, 1)
        progress.note("starting \(threadCount) idle vCPU threads")
        threads = IdleThreads(count: threadCount)
        defer { threads.stop() }

        var shapes: [DaemonBenchReport.ShapeResult] = []
        var rows: [DaemonBenchReport.Row] = []
        for (index, shape) in options.shapes.enumerated() {
            let (shapeResult, shapeRows) = try runShape(shape, index: index)
            shapes.append(shapeResult)
            rows += shapeRows
        }
        var placement: [DaemonBenchReport.PlacementRow] = []
        if options.placementStudy { placement = try runPlacementStudy(cpus: machine) }
        Self.fillRatios(&rows)

        // Allocations in warm-ups and windows recorded their call stacks:
        // name them while the daemon still runs (its mappings are needed).
        var sites: [AllocationSite] = []
        var firstUseSites: [AllocationSite] = []
        if counters != nil, !(windowStacks.isEmpty && warmupStacks.isEmpty),
            let resolver = AllocationSiteResolver(processID: daemon.pid)
        {
            progress.note("naming the call sites of \(windowStacks.count + warmupStacks.count) allocation stack(s)")
            let library = options.mallocCounterLibrary.map { ($0 as NSString).resolvingSymlinksInPath }
            sites = resolver.sites(from: windowStacks, skippingLibrary: library)
            firstUseSites = resolver.sites(from: warmupStacks, skippingLibrary: library)
        }
        let warnings = daemon.warnings()
        let status = daemon.stop()
        var notes: [String] = []
        if let daemonSliceObserved {
            notes.append("daemon-CPU-busy rows: the daemon's loop showed se.slice = \(daemonSliceObserved) ns after its slice was set to \(BenchPlacement.daemonSliceMicroseconds) µs")
        }
        if status != 0 { notes.append("the daemon exited with status \(status.map(String.init) ?? "SIGKILL") at SIGTERM") }
        #if DEBUG
            notes.append("DEBUG BUILD: the daemon allocates in unspecialized generics; measure with `swift build -c release`.")
        #endif
        return DaemonBenchReport(
            command: command, date: ISO8601DateFormatter().string(from: Date()), quick: options.quick,
            build: Self.buildConfiguration, machine: machine, loadAverageBefore: loadBefore,
            loadAverageAfter: MachineDescription.loadAverages(),
            daemon: .init(
                actuators: actuators, allocationCounting: allocationCounting,
                allocationsBeforeMeasuring: allocationsBeforeMeasuring,
                windowAllocationsRecorded: counters.map { _ in windowAllocations }, allocationSites: sites,
                firstUseAllocationSites: firstUseSites,
                observedSliceNanoseconds: observedSlice, warnings: warnings),
            settings: .init(
                rounds: options.rounds, latencySamples: options.rounds * options.latencySamplesPerRound, latencyGapMicroseconds: options.latencyGapMicroseconds,
                throughputSeconds: options.throughputSeconds, warmupSeconds: options.warmupSeconds,
                pollIntervalMicroseconds: options.pollIntervalMicroseconds,
                latencySliceMicroseconds: options.latencySliceMicroseconds,
                lowUtilization: LoadGenerator.lowUtilization, highUtilization: LoadGenerator.highUtilization),
            shapes: shapes, rows: rows, placement: placement, notes: notes)
    }

    static var buildConfiguration: String {
        #if DEBUG
            return "debug"
        #else
            return "release"
        #endif
    }

    private func makeWorkDirectory() throws -> String {
        let parent: String
        if let chosen = options.workDirectory {
            parent = chosen
        } else if FileManager.default.isWritableFile(atPath: "/dev/shm") {
            parent = "/dev/shm"
        } else {
            parent = FileManager.default.temporaryDirectory.path
        }
        let path = parent + "/vcpufreq-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: One VM shape

    func attach(_ shape: VMShape, profile: String, tag: String) throws -> [EmulatedVM] {
        var vms: [EmulatedVM] = []
        for vm in 0..<shape.vms {
            let first = vm * shape.vcpusPerVM
            let tids = Array(threads.threadIDs[first..<(first + shape.vcpusPerVM)])
            vms.append(try EmulatedVM(socketPath: socketPath, name: "bench-\(tag)-\(vm)", profile: profile, threadIDs: tids))
        }
        if actuators.isEmpty, let first = vms.first { actuators = first.attached.actuators }
        return vms
    }

    /// Every path of `shape`, `options.rounds` times over (kick-profile VMs
    /// for paths 1 and 2, then poll-profile VMs for path 3, each round), the
    /// rounds' sums merged into one row per path and request kind.
    private func runShape(_ shape: VMShape, index: Int) throws -> (DaemonBenchReport.ShapeResult, [DaemonBenchReport.Row]) {
        let label = "[\(index + 1)/\(options.shapes.count)] \(shape.vms) VM(s) x \(shape.vcpusPerVM) vCPUs"
        let kicked: [(BenchPath, BenchVariant)] = [(.registerForwarding, .clamp), (.sharedPageKick, .clamp), (.sharedPageKick, .clampAndSlice)]
        let polled: [(BenchPath, BenchVariant)] = [(.sharedPagePolled, .clamp), (.sharedPagePolled, .clampAndSlice)]
        var sums = Array(repeating: RowMeasurement(), count: kicked.count + polled.count)
        var result = DaemonBenchReport.ShapeResult(vms: shape.vms, vcpusPerVM: shape.vcpusPerVM, attachSeconds: 0)
        for round in 0..<options.rounds {
            let roundLabel = options.rounds > 1 ? "\(label) round \(round + 1)/\(options.rounds)" : label
            progress.note("\(roundLabel): attaching (kick_mode always)")
            let started = Date()
            var vms = try attach(shape, profile: BenchTopology.kickProfile(vcpus: shape.vcpusPerVM), tag: "\(index)-\(round)-kick")
            var generator = LoadGenerator(vms: vms, sliceMicroseconds: UInt32(options.latencySliceMicroseconds))
            if round == 0 {
                result.attachSeconds = Date().timeIntervalSince(started)
                let idle = measureIdle()
                result.idleDaemonCPUPercentKicked = idle?.cpuPercent
                result.idleDaemonWakeupsPerSecondKicked = idle?.wakeupsPerSecond
            }
            if allocationsBeforeMeasuring == nil { allocationsBeforeMeasuring = counters?.read().allocations }
            for (offset, (path, variant)) in kicked.enumerated() {
                sums[offset].add(try measureRow(path, variant, generator, label: roundLabel))
            }
            if observedSlice == nil {
                try generator.leaveLatencySensitive(target: 0, path: .sharedPageKick)
                observedSlice = ProcFS().eevdfSliceNanoseconds(ofThread: threads.threadIDs[0])
            }
            for vm in vms { vm.detach() }

            progress.note("\(roundLabel): attaching (kick_mode never, poll_interval_us \(options.pollIntervalMicroseconds))")
            vms = try attach(shape, profile: BenchTopology.pollProfile(vcpus: shape.vcpusPerVM), tag: "\(index)-\(round)-poll")
            generator = LoadGenerator(vms: vms, sliceMicroseconds: UInt32(options.latencySliceMicroseconds))
            if round == 0 {
                let idle = measureIdle()
                result.idleDaemonCPUPercentPolled = idle?.cpuPercent
                result.idleDaemonWakeupsPerSecondPolled = idle?.wakeupsPerSecond
            }
            for (offset, (path, variant)) in polled.enumerated() {
                sums[kicked.count + offset].add(try measureRow(path, variant, generator, label: roundLabel))
            }
            for vm in vms { vm.detach() }
        }
        var rows: [DaemonBenchReport.Row] = []
        for (sum, (path, variant)) in zip(sums, kicked + polled) {
            guard let row = sum.row(shape: shape, path: path, variant: variant) else {
                throw BenchError("\(label) \(path.title): no latency samples")
            }
            progress.note(
                "\(label) \(path.title), \(variant.title): p50 \(Self.format(row.latency.p50Microseconds)) µs, "
                    + "p99 \(Self.format(row.latency.p99Microseconds)) µs; \(Self.format(row.requestsPerSecond, digits: 0)) req/s"
                    + (row.allocationsPerRequest.map { ", \(Self.format($0, digits: 3)) allocs/req" } ?? ""))
            rows.append(row)
        }
        return (result, rows)
    }

    /// The daemon's CPU use (%) and wake-ups per second over `idleSeconds`
    /// with nothing asked of it.
    private func measureIdle() -> (cpuPercent: Double, wakeupsPerSecond: Double)? {
        guard options.idleSeconds > 0, let before = daemon.usage() else { return nil }
        let start = MonotonicClock.nowNanoseconds()
        usleep(UInt32(options.idleSeconds * 1_000_000))
        guard let after = daemon.usage() else { return nil }
        let elapsed = Double(MonotonicClock.nowNanoseconds() - start)
        let used = after.since(before)
        return (Double(used.cpuNanoseconds) / elapsed * 100, Double(used.voluntarySwitches) / elapsed * 1e9)
    }

    /// One round of one row: warm-up (every vCPU at least once), latency
    /// samples, then the closed-loop throughput window.
    private func measureRow(
        _ path: BenchPath, _ variant: BenchVariant, _ generator: LoadGenerator, label: String
    ) throws -> RowMeasurement {
        var measured = RowMeasurement()
        let statusBefore = try daemonCounts()
        let issuedBefore = generator.issuedRequests
        // Warm-up touches every vCPU: the first request of a vCPU or VM on a
        // path may allocate once (first use), which is not the steady state.
        let warmupAllocationsBefore = counters?.read()
        try recordingStacks(into: \.warmupStacks) {
            _ = try generator.measureLatency(
                path: path, variant: variant, samples: max(options.warmupRequests, generator.targetCount),
                gapMicroseconds: 0, yieldWhileWaiting: true)
        }
        measured.warmupAllocations = counters.flatMap { file in warmupAllocationsBefore.map { file.read().since($0).allocations } }

        progress.note("\(label) \(path.title), \(variant.title): measuring latency")
        let latencyAllocationsBefore = counters?.read()
        let latencyUsageBefore = daemon.usage()
        measured.latency = try recordingStacks(into: \.windowStacks) {
            try generator.measureLatency(
                path: path, variant: variant, samples: options.latencySamplesPerRound,
                gapMicroseconds: options.latencyGapMicroseconds, yieldWhileWaiting: true)
        }
        measured.latencyAllocations = counters.flatMap { file in latencyAllocationsBefore.map { file.read().since($0) } }
        windowAllocations &+= measured.latencyAllocations?.allocations ?? 0
        measured.latencyUsage = daemon.usage().flatMap { after in latencyUsageBefore.map { after.since($0) } }

        var windowStart: (MallocCounts?, ThreadUsage?) = (nil, nil)
        var windowEnd: (MallocCounts?, ThreadUsage?) = (nil, nil)
        var stacksBefore: UInt64 = 0
        let throughput = try generator.measureThroughput(
            path: path, variant: variant, warmupNanoseconds: UInt64(options.warmupSeconds * 1e9),
            windowNanoseconds: UInt64(options.throughputSeconds / Double(options.rounds) * 1e9), yieldWhileWaiting: true,
            windowStarts: {
                windowStart = (self.counters?.read(), self.daemon.usage())
                stacksBefore = self.counters?.recordedStacks ?? 0
                if self.windowStacks.count < Self.stacksKept { self.counters?.setArmed(true) }
            },
            windowEnds: {
                self.counters?.setArmed(false)
                windowEnd = (self.counters?.read(), self.daemon.usage())
                self.keepStacks(since: stacksBefore, into: \.windowStacks)
            })
        let statusAfter = try daemonCounts()
        measured.completed = throughput.completed
        measured.windowNanoseconds = throughput.windowNanoseconds
        measured.loaded = throughput.latency
        measured.allocations = windowEnd.0.flatMap { end in windowStart.0.map { end.since($0) } }
        windowAllocations &+= measured.allocations?.allocations ?? 0
        measured.usage = windowEnd.1.flatMap { end in windowStart.1.map { end.since($0) } }
        measured.generatorCPUNanoseconds = throughput.generatorCPUNanoseconds
        measured.doorbellWrites = throughput.doorbellWrites
        measured.daemonCounted = statusBefore.flatMap { before in statusAfter.map { $0.since(before) } }
        measured.generatorIssued = generator.issuedRequests - issuedBefore
        return measured
    }

    /// Runs `body` with the counter library recording the call stack of
    /// every allocation, and keeps those stacks in `list`.
    /// Recording stops once `stacksKept` stacks are kept (each costs the
    /// daemon a few syscalls per frame; a debug build allocates per request).
    private func recordingStacks<T>(into list: ReferenceWritableKeyPath<DaemonBenchmark, [[UInt64]]>, _ body: () throws -> T) rethrows -> T {
        guard let counters, self[keyPath: list].count < Self.stacksKept else { return try body() }
        let before = counters.recordedStacks
        counters.setArmed(true)
        defer {
            counters.setArmed(false)
            keepStacks(since: before, into: list)
        }
        return try body()
    }

    private func keepStacks(since before: UInt64, into list: ReferenceWritableKeyPath<DaemonBenchmark, [[UInt64]]>) {
        guard let counters else { return }
        let after = counters.recordedStacks
        let room = max(0, Self.stacksKept - self[keyPath: list].count)
        self[keyPath: list] += counters.stacks(recorded: before..<after).prefix(room)
    }

    /// The daemon's request counters over every attached VM (STATUS; it
    /// allocates in the daemon, so never inside a measurement window). Read
    /// from the raw JSON: `VCPUFreqClient.status` cannot decode a document
    /// with VMs in it (its snake_case key `peer_pid` converts back to
    /// `peerPid`, not `peerPID`).
    private func daemonCounts() throws -> DaemonBenchReport.DaemonCounts? {
        let json: [UInt8]
        do {
            let client = try VCPUFreqClient(socketPath: socketPath, clientName: "vcpufreq-bench-status")
            json = try client.statusJSON(allVMs: true)
        } catch {
            throw BenchError("STATUS failed: \(error)")
        }
        guard let document = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let vms = document["vms"] as? [[String: Any]]
        else { return nil }
        var counts = DaemonBenchReport.DaemonCounts(requests: 0, kicks: 0, polls: 0, actuationErrors: 0)
        for vm in vms {
            guard let counters = vm["counters"] as? [String: Any] else { return nil }
            func value(_ key: String) -> UInt64 { (counters[key] as? NSNumber)?.uint64Value ?? 0 }
            counts.requests &+= value("requests")
            counts.kicks &+= value("kicks")
            counts.polls &+= value("polls")
            counts.actuationErrors &+= value("actuation_errors")
        }
        return counts
    }

    static func format(_ value: Double, digits: Int = 1) -> String {
        String(format: "%.\(digits)f", value)
    }

    // MARK: Ratios

    /// Each row against path 1 (utilization only) of its shape.
    static func fillRatios(_ rows: inout [DaemonBenchReport.Row]) {
        for index in rows.indices {
            guard let base = rows.first(where: {
                $0.vms == rows[index].vms && $0.vcpusPerVM == rows[index].vcpusPerVM
                    && $0.path == .registerForwarding && $0.variant == .clamp
            }) else { continue }
            let row = rows[index]
            func ratio(_ a: Double?, _ b: Double?) -> Double? {
                guard let a, let b, b > 0 else { return nil }
                return a / b
            }
            rows[index].ratios = DaemonBenchReport.Ratios(
                requestsPerSecond: ratio(row.requestsPerSecond, base.requestsPerSecond),
                p50: ratio(row.latency.p50Microseconds, base.latency.p50Microseconds),
                p99: ratio(row.latency.p99Microseconds, base.latency.p99Microseconds),
                daemonCPUPerRequest: ratio(row.daemonCPUMicrosecondsPerRequest, base.daemonCPUMicrosecondsPerRequest))
        }
    }
}

extension DaemonBenchReport.DaemonCounts {
    func since(_ earlier: Self) -> Self {
        Self(
            requests: requests &- earlier.requests, kicks: kicks &- earlier.kicks, polls: polls &- earlier.polls,
            actuationErrors: actuationErrors &- earlier.actuationErrors)
    }
}
