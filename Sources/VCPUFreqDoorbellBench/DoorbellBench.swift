import Foundation
import Glibc
import SystemPackage
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqProtocol
import VCPUFreqVMM

/// The doorbell benchmark: in one run, on real KVM, the five ways a guest
/// request reaches the host, side by side, and the two ways of reading
/// cur_perf (bench/doorbell.md):
///
/// 1. an MMIO exit handled in the VMM thread, which calls sched_setattr on
///    itself (`InProcessDevice`, crosvm's way);
/// 2. an MMIO exit the VMM forwards to the daemon over its socket;
/// 3. a shared-page publish and an ioeventfd kick;
/// 4. a shared-page publish with kicks suppressed (the daemon polls);
/// 5. a shared-page publish on a page that is a BPF map, no kick: a host
///    BPF program reads it at the vCPU thread's next scheduling event;
///
/// and cur_perf through an MMIO exit (answered in the VMM, or by the daemon)
/// against a load from the read-only mirror. Each path gets its own
/// one-vCPU VM; paths 2-5 share one daemon (`vcpufreq serve`, started here
/// with `BenchTopology`). For every placement of the threads (`Placement`)
/// it measures the vCPU-side cost per request (back to back, not waiting),
/// request → hint applied latencies (timed in the guest with its TSC, the
/// guest spinning until the daemon's host area shows the request's util_min;
/// for path 1 until the exit returns, the handler having applied it; for
/// path 5 until `sched_seen`, written only by BPF, shows it), exits
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
        let loadBefore = MachineDescription.loadAverage()
        let cpuCount = machine.onlineCPUs
        let placements = self.placements.filter { placement in
            guard placement.cpus(cpuCount: cpuCount) != nil else {
                progress.note("placement \(placement.rawValue) skipped: it needs 2 CPUs, this host has \(cpuCount)")
                return false
            }
            return true
        }
        progress.plan(steps: 2 + PlacementRun.steps(configuration) * placements.count)

        progress.begin("starting the daemon and one-vCPU VMs")
        let rig = try Rig(system: system, executable: daemonExecutable, configuration: configuration, cpuCount: cpuCount)
        if let reason = rig.bpfMapPageUnavailable { progress.note("path 5 (BPF-map page) skipped: \(reason)") }
        DaemonReaper.arm(rig.daemon.pid)
        defer {
            rig.tearDown(cpuCount: cpuCount)
            DaemonReaper.disarm()
        }
        progress.note("daemon pid \(rig.daemon.pid), vCPU threads \(rig.vcpuThreads.map(String.init).joined(separator: " "))")

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
            let run = PlacementRun(
                placement: placement, rig: rig, configuration: configuration, cpuCount: cpuCount,
                calibration: calibration, gapMask: gapMask, seed: 0x5EED_0000 &+ UInt64(index) << 8, progress: progress)
            results.append(try run.measure())
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
            daemonActuators: (status?.daemon.actuators ?? "unknown")
                + (configuration.daemonArguments.isEmpty ? "" : "; serve \(configuration.daemonArguments.joined(separator: " "))"),
            daemonNotes: status?.daemon.actuatorNotes ?? [],
            inVMMDevice: rig.inProcessDevice.counts, placements: results, targets: targets, findings: [])
        document.loadAverageBefore = loadBefore
        document.loadAverageAfter = MachineDescription.loadAverage()
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

    static func result(
        _ kind: RequestPathKind, cost: RequestPath.Cost, latency: RequestPath.Latency, tsc: TSCCalibration,
        daemon counters: PlacementRun.DaemonCounters?, accounting: RequestResult.Accounting?
    ) -> RequestResult {
        let applied = latency.samples.compactMap { $0.appliedTicks.map { tsc.microseconds(ticks: $0) } }
        func appliedOf(a: Bool) -> [Double] {
            zip(latency.samples, latency.isRequestA).compactMap { sample, isA in
                isA == a ? sample.appliedTicks.map { tsc.microseconds(ticks: $0) } : nil
            }
        }
        let requestCosts = latency.samples.map { tsc.microseconds(ticks: $0.requestTicks) }
        let timed = Double(max(latency.samples.count, 1))
        let daemon = counters.map {
            RequestResult.DaemonCounts(
                requestsPerRequest: Double($0.requests) / timed, kicksPerRequest: Double($0.kicks) / timed,
                pollsPerRequest: Double($0.polls) / timed, wakeupsPerRequest: Double($0.wakeups) / timed)
        }
        return RequestResult(
            path: kind, name: kind.name, title: kind.title, costMicroseconds: cost.microsecondsPerRequest,
            costRounds: cost.rounds, costRatioToPath1: nil, exitsPerRequest: cost.exitsPerRequest,
            kicksPerRequest: cost.kicksPerRequest, latency: LatencySummary(applied), latencyRatioToPath1: nil,
            latencyOfA: LatencySummary(appliedOf(a: true)), latencyOfB: LatencySummary(appliedOf(a: false)),
            spacedRequestCost: LatencySummary(requestCosts), abandoned: Int(latency.abandoned),
            timedExitsPerRequest: Double(latency.exits) / timed, timedKicksPerRequest: Double(latency.kicks) / timed,
            daemon: daemon, accounting: accounting,
            latencyQuantiles: LatencySummary.quantiles(applied).map { ($0 * 100).rounded() / 100 })
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

