import Foundation
import Glibc
import SystemPackage
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqProtocol
import VCPUFreqVMM

/// The doorbell benchmark: in one run, on real KVM, the four ways a guest
/// request reaches a host hint, side by side, and the two ways of reading
/// cur_perf (bench/doorbell.md):
///
/// 1. an MMIO exit handled in the VMM thread, which calls sched_setattr on
///    itself (`InProcessDevice`, crosvm's way);
/// 2. an MMIO exit the VMM forwards to the daemon over its socket;
/// 3. a shared-page publish and an ioeventfd kick;
/// 4. a shared-page publish with kicks suppressed (the daemon polls);
///
/// and cur_perf through an MMIO exit (answered in the VMM, or by the daemon)
/// against a load from the read-only mirror. Each path gets its own
/// one-vCPU VM; paths 2-4 share one daemon (`vcpufreq serve`, started here
/// with `BenchTopology`). For every placement of the threads (`Placement`)
/// it measures the vCPU-side cost per request (back to back, not waiting),
/// request → hint applied latencies (timed in the guest with its TSC, the
/// guest spinning until the daemon's host area shows the request's util_min;
/// for path 1 until the exit returns, the handler having applied it), exits
/// and kicks per request, and the host-only eventfd wake-up under the same
/// placement.
public struct DoorbellBench {
    public var configuration: BenchConfiguration
    /// The `vcpufreq` executable whose `serve` the daemon runs.
    public var daemonExecutable: String
    public var placements: [Placement]
    public var progress: ProgressReporter
    public var kvmDevice: String

    public init(
        configuration: BenchConfiguration, daemonExecutable: String, placements: [Placement] = Placement.allCases,
        progress: ProgressReporter = .silent, kvmDevice: String = KVMSystem.defaultDevicePath.string
    ) {
        self.configuration = configuration
        self.daemonExecutable = daemonExecutable
        self.placements = placements
        self.progress = progress
        self.kvmDevice = kvmDevice
    }

    /// Runs every path in every placement; the threads are unpinned again
    /// and the daemon stopped before it returns (also on failure).
    public func run() throws(BenchError) -> DoorbellResults {
        let system: KVMSystem
        do { system = try KVMSystem(devicePath: FilePath(kvmDevice)) } catch {
            throw .kvmUnavailable("\(error)")
        }
        #if !arch(x86_64)
            throw BenchError.kvmUnavailable("the reference VMM's guest runs on x86-64 only")
        #endif
        let machine = MachineDescription.current()
        let cpuCount = machine.onlineCPUs
        let placements = self.placements.filter { placement in
            guard placement.cpus(cpuCount: cpuCount) != nil else {
                progress.note("placement \(placement.rawValue) skipped: it needs 2 CPUs, this host has \(cpuCount)")
                return false
            }
            return true
        }
        let perPlacement = 2 + RequestPathKind.allCases.count * 2 + ReadPathKind.allCases.count
        progress.plan(steps: 2 + perPlacement * placements.count)

        progress.begin("starting the daemon and four one-vCPU VMs")
        let rig = try Rig(system: system, executable: daemonExecutable, configuration: configuration, cpuCount: cpuCount)
        defer { rig.tearDown(cpuCount: cpuCount) }

        progress.begin("calibrating the guest's spin loop and TSC")
        let calibration = try rig.calibrate()
        let gapMask = Self.gapMask(for: configuration.maximumGap, spin: calibration.spin)
        progress.note(String(
            format: "TSC %.1f ticks/µs (spread %.1e), spin %.3f ns/iteration, time stamps add %.1f ns, mean gap %.0f µs",
            calibration.tsc.ticksPerMicrosecond, calibration.tsc.relativeSpread,
            calibration.spin.nanosecondsPerIteration, calibration.timestampOverheadNanoseconds,
            Double(gapMask) / 2 * calibration.spin.nanosecondsPerIteration / 1000))

        var results: [PlacementResults] = []
        for (index, placement) in placements.enumerated() {
            results.append(try measure(
                placement, rig: rig, cpuCount: cpuCount, calibration: calibration, gapMask: gapMask,
                seed: 0x5EED_0000 &+ UInt64(index)))
        }
        progress.finish()

        let status = try? ConnectedVM.status(of: rig.kicked.client, allVMs: false)
        let settings = DoorbellResults.Settings(
            quick: configuration.isQuick, costRounds: configuration.costRounds,
            exitingRequests: configuration.exitingRequests, kickedRequests: configuration.kickedRequests,
            suppressedRequests: configuration.suppressedRequests, mirrorReads: configuration.mirrorReads,
            latencySamples: configuration.latencySamples, pollIntervalMicroseconds: configuration.pollIntervalMicroseconds,
            meanGapMicroseconds: Double(gapMask) / 2 * calibration.spin.nanosecondsPerIteration / 1000,
            applyTimeoutMicroseconds: Timing.microseconds(configuration.applyTimeout),
            requestAKHz: BenchTopology.requestA, requestBKHz: BenchTopology.requestB,
            expectedUtilMinA: BenchTopology.utilMin(forKHz: BenchTopology.requestA),
            expectedUtilMinB: BenchTopology.utilMin(forKHz: BenchTopology.requestB))
        let targets = Findings.targets(results)
        var document = DoorbellResults(
            date: ISO8601DateFormatter().string(from: Date()), machine: machine, settings: settings,
            calibration: .init(
                tsc: calibration.tsc, spinNanosecondsPerIteration: calibration.spin.nanosecondsPerIteration,
                timestampOverheadNanoseconds: calibration.timestampOverheadNanoseconds),
            daemonActuators: status?.daemon.actuators ?? "unknown", daemonNotes: status?.daemon.actuatorNotes ?? [],
            inVMMDevice: rig.inProcessDevice.counts, placements: results, targets: targets, findings: [])
        document.findings = Findings.explain(document)
        return document
    }

    /// A power-of-two-minus-one spin mask whose mean, half of it, is about
    /// half of `maximum`: the REQUESTS op draws the gap as `random & mask`.
    public static func gapMask(for maximum: Duration, spin: SpinCalibration) -> UInt64 {
        let iterations = spin.iterations(for: maximum)
        guard iterations > 1 else { return 0 }
        // The power of two nearest to `iterations` on a log scale.
        let below = UInt64(1) << (63 - iterations.leadingZeroBitCount)
        let nearest = Double(iterations) / Double(below) < 1.4142 ? below : below << 1
        return nearest - 1
    }

    // MARK: One placement

    private func measure(
        _ placement: Placement, rig: Rig, cpuCount: Int, calibration: Rig.Calibration, gapMask: UInt64, seed: UInt64
    ) throws(BenchError) -> PlacementResults {
        try placement.apply(cpuCount: cpuCount, vcpuThreads: rig.vcpuThreads, daemonPID: rig.daemon.pid)
        let (vcpuCPUs, daemonCPUs) = placement.cpus(cpuCount: cpuCount) ?? (CPUList([]), CPUList([]))
        let label = placement.rawValue

        progress.begin("\(label) · eventfd wake-up baseline (no KVM)")
        let wakeup = WakeupBaseline.measure(placement: placement, cpuCount: cpuCount, samples: configuration.wakeupSamples)

        progress.begin("\(label) · a doorbell store nobody waits on (KVM's own cost of a kick)")
        let idleKick = try rig.measureIdleKick(stores: configuration.kickedRequests, rounds: configuration.costRounds)

        var requests: [RequestResult] = []
        for kind in RequestPathKind.allCases {
            var attached: ConnectedVM?
            let path: RequestPath
            if kind == .suppressed {
                let (vm, suppressed) = try rig.attachSuppressed()
                attached = vm
                path = suppressed
                try placement.apply(cpuCount: cpuCount, vcpuThreads: [Int32(vm.vcpus[0].threadID)], daemonPID: nil)
            } else if let existing = rig.requestPaths.first(where: { $0.kind == kind }) {
                path = existing
            } else {
                continue
            }
            defer { _ = try? attached?.detach() }
            requests.append(try measure(
                path, vm: attached ?? rig.connectedVM(for: kind), label: label, rig: rig, cpuCount: cpuCount,
                calibration: calibration, gapMask: gapMask, seed: seed))
        }
        Self.addRatios(&requests)

        var reads: [ReadResult] = []
        for path in rig.readPaths {
            let count = path.kind == .mirror ? configuration.mirrorReads : configuration.exitingRequests
            progress.begin("\(label) · \(path.kind.title), \(count) back to back")
            let cost = try path.measure(reads: count, rounds: configuration.costRounds, timeout: .seconds(120))
            reads.append(ReadResult(
                path: path.kind, name: path.kind.name, title: path.kind.title, costMicroseconds: cost.microsecondsPerRead,
                costRounds: cost.rounds, ratioToMMIOInVMM: nil, exitsPerRead: cost.exitsPerRead, value: cost.value))
        }
        if let reference = reads.first(where: { $0.path == .inVMM })?.costMicroseconds, reference > 0 {
            for index in reads.indices { reads[index].ratioToMMIOInVMM = reads[index].costMicroseconds / reference }
        }
        return PlacementResults(
            placement: placement, vcpuCPUs: "\(vcpuCPUs)", daemonCPUs: "\(daemonCPUs)", requests: requests, reads: reads,
            wakeup: wakeup.latency, idleKickMicroseconds: idleKick)
    }

    /// One request path in the current placement: its cost, then its timed
    /// requests with the host's accounting around them.
    private func measure(
        _ path: RequestPath, vm: ConnectedVM?, label: String, rig: Rig, cpuCount: Int, calibration: Rig.Calibration,
        gapMask: UInt64, seed: UInt64
    ) throws(BenchError) -> RequestResult {
        let count = requestCount(path.kind)
        progress.begin("\(label) · path \(path.kind.rawValue) \(path.kind.title): cost, \(count) back to back")
        let cost = try path.measureCost(requests: count, rounds: configuration.costRounds, timeout: .seconds(120))

        progress.begin("\(label) · path \(path.kind.rawValue): request → applied, \(configuration.latencySamples) timed requests")
        let accounting = HostAccounting(
            daemonPID: rig.daemon.pid, vcpuThread: Int32(path.vcpu.threadID), cpuCount: cpuCount)
        let before = try? vm?.status()?.counters
        let perRun = configuration.samplesPerRun
        let runTimeout = Duration.seconds(10) + (configuration.maximumGap * 2 + configuration.applyTimeout) * perRun
        let start = accounting.snapshot()
        let latency = try path.measureLatency(
            count: configuration.latencySamples, perRun: perRun, gapMask: gapMask,
            timeoutTicks: calibration.tsc.ticks(for: configuration.applyTimeout), seed: seed &+ UInt64(path.kind.rawValue),
            timeout: runTimeout, primer: Rig.primer(for: path)
        ) { done in progress.update(done, of: configuration.latencySamples) }
        let end = accounting.snapshot()
        let after = try? vm?.status()?.counters
        var result = Self.result(path.kind, cost: cost, latency: latency, tsc: calibration.tsc, before: before, after: after)
        result.accounting = accounting.difference(start, end, requests: latency.samples.count)
        return result
    }

    private func requestCount(_ kind: RequestPathKind) -> UInt32 {
        switch kind {
        case .inVMM, .forwarded: return configuration.exitingRequests
        case .kicked: return configuration.kickedRequests
        case .suppressed: return configuration.suppressedRequests
        }
    }

    static func result(
        _ kind: RequestPathKind, cost: RequestPath.Cost, latency: RequestPath.Latency, tsc: TSCCalibration,
        before: StatusCounters?, after: StatusCounters?
    ) -> RequestResult {
        let applied = latency.samples.compactMap { $0.appliedTicks.map { tsc.microseconds(ticks: $0) } }
        let requestCosts = latency.samples.map { tsc.microseconds(ticks: $0.requestTicks) }
        let timed = Double(max(latency.samples.count, 1))
        var daemon: RequestResult.DaemonCounts?
        if let before, let after {
            daemon = .init(
                requestsPerRequest: Double(after.requests &- before.requests) / timed,
                kicksPerRequest: Double(after.kicks &- before.kicks) / timed,
                pollsPerRequest: Double(after.polls &- before.polls) / timed)
        }
        return RequestResult(
            path: kind, name: kind.name, title: kind.title, costMicroseconds: cost.microsecondsPerRequest,
            costRounds: cost.rounds, costRatioToPath1: nil, exitsPerRequest: cost.exitsPerRequest,
            kicksPerRequest: cost.kicksPerRequest, latency: LatencySummary(applied), latencyRatioToPath1: nil,
            spacedRequestCost: LatencySummary(requestCosts), abandoned: Int(latency.abandoned),
            timedExitsPerRequest: Double(latency.exits) / timed, timedKicksPerRequest: Double(latency.kicks) / timed,
            daemon: daemon, accounting: nil, latencySamples: applied.map { ($0 * 100).rounded() / 100 })
    }

    static func addRatios(_ requests: inout [RequestResult]) {
        guard let reference = requests.first(where: { $0.path == .inVMM }) else { return }
        for index in requests.indices {
            if reference.costMicroseconds > 0 {
                requests[index].costRatioToPath1 = requests[index].costMicroseconds / reference.costMicroseconds
            }
            if let mine = requests[index].latency, let theirs = reference.latency, theirs.p50 > 0, theirs.p99 > 0 {
                requests[index].latencyRatioToPath1 = .init(p50: mine.p50 / theirs.p50, p99: mine.p99 / theirs.p99)
            }
        }
    }
}

typealias StatusCounters = StatusDocument.Counters
