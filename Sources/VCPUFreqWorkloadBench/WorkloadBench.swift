import Foundation
import Glibc
import SystemPackage
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

/// `vcpufreq bench workload` in guest mode: the five tests (`WorkloadTest`)
/// on real KVM in every configuration (`WorkloadConfiguration`),
/// interleaved round by round with the same programs, under host
/// contention, scored inside the guest (bench/workload.md).
public struct WorkloadBench {
    public var settings: WorkloadSettings
    /// The `vcpufreq` executable whose `serve` the daemon runs.
    public var daemonExecutable: String
    public var progress: ProgressReporter
    public var kvmDevice: String
    /// Where RAPL zones and cpufreq stats are read (fixtures in tests).
    public var energy = EnergyMeter()
    public var residency = FrequencyResidency()
    public var schedExtRoot = SchedExt.root

    public init(
        settings: WorkloadSettings, daemonExecutable: String, progress: ProgressReporter = .silent,
        kvmDevice: String = KVMSystem.defaultDevicePath.string
    ) {
        self.settings = settings
        self.daemonExecutable = daemonExecutable
        self.progress = progress
        self.kvmDevice = kvmDevice
    }

    /// Runs every test in every configuration; the contention is stopped,
    /// the VMs detached and the daemon stopped before it returns (also on failure).
    public func run() throws(WorkloadBenchError) -> WorkloadResults {
        guard settings.rounds >= 1 else { throw .usage("--rounds must be at least 1") }
        let system: KVMSystem
        do { system = try KVMSystem(devicePath: FilePath(kvmDevice)) } catch {
            throw .kvmUnavailable("\(error)")
        }
        #if !arch(x86_64)
            throw WorkloadBenchError.kvmUnavailable("the reference VMM's guest runs on x86-64 only")
        #endif
        let machine = MachineDescription.current()
        let uptimeBefore = Self.uptimeLine()
        let cpuCount = machine.onlineCPUs
        let startedAt = Date()

        // Configuration 5 only where the kernel has sched_ext.
        var notRun: [WorkloadConfiguration: String] = [:]
        if settings.configurations.contains(.vcpufreqSchedExt),
            let reason = SchedExt.hostUnavailableReason(root: schedExtRoot)
        {
            notRun[.vcpufreqSchedExt] = reason
            progress.note("vcpufreq-sched-ext: \(reason)")
        }
        var runnable = settings.configurations.filter { notRun[$0] == nil }
        var runsPlanned = settings.rounds * settings.tests.count * runnable.count
        progress.plan(steps: 2 + runsPlanned)

        progress.begin("starting the daemon and one \(settings.vcpuCount(cpuCount: cpuCount))-vCPU VM per configuration")
        var rigSettings = settings
        rigSettings.configurations = runnable
        let rig = try WorkloadRig(system: system, settings: rigSettings, executable: daemonExecutable, cpuCount: cpuCount)
        if let daemon = rig.daemon { DaemonReaper.arm(daemon.pid) }
        defer {
            rig.tearDown()
            DaemonReaper.disarm()
        }
        // Configuration 6 only where the daemon offers BPF-map pages (BPF programs loaded).
        if runnable.contains(.vcpufreqBPFMap), let reason = rig.bpfMapPageUnavailable() {
            notRun[.vcpufreqBPFMap] = reason
            progress.note("vcpufreq-bpf-map: \(reason)")
            runnable.removeAll { $0 == .vcpufreqBPFMap }
            runsPlanned = settings.rounds * settings.tests.count * runnable.count
            progress.plan(steps: 2 + runsPlanned)
        }
        progress.begin("calibrating the guest's spin loop, TSC and memory loop; touching every buffer")
        let calibration = try rig.calibrate()
        progress.note(String(
            format: "TSC %.1f ticks/µs, spin %.3f ns/iteration, memory loop %.1f read-modify-writes/µs",
            calibration.tsc.ticksPerMicrosecond, calibration.spin.nanosecondsPerIteration,
            calibration.memoryIterationsPerMicrosecond))

        let hogs: CPUHogs?
        do {
            hogs = settings.contention.hogsPerCPU > 0
                ? try CPUHogs(cpus: Array(0..<cpuCount), perCPU: settings.contention.hogsPerCPU, name: "wl-hog") : nil
        } catch {
            throw .measurement("\(error)")
        }
        defer { hogs?.stop() }

        var runs: [RunRecord] = []
        var delays: [String: [Double]] = [:]
        var done = 0
        let loopStart = ContinuousClock.now
        for round in 0..<settings.rounds {
            let programs = settings.programs(round: round, vcpuCount: rig.vcpus)
            // Rotated by one each round: no configuration always follows the same one.
            let order = (0..<runnable.count).map { runnable[($0 + round) % runnable.count] }
            for program in programs {
                for configuration in order where notRun[configuration] == nil {
                    let eta = done > 0 ? Timing.seconds(ContinuousClock.now - loopStart) / Double(done) * Double(runsPlanned - done) : nil
                    progress.begin(
                        "round \(round + 1)/\(settings.rounds) · \(program.test.name) · \(configuration.name)"
                            + (eta.map { " · ETA \(Self.duration($0))" } ?? ""))
                    let measured: (RunRecord, [Double])
                    if configuration == .vcpufreqBPFMap {
                        let target: GuestTarget
                        do {
                            target = try rig.openBPFMap(tsc: calibration.tsc)
                        } catch {
                            let reason: String
                            if case .bpfMapPageRefused = error { reason = error.description } else { reason = "not run: \(error)" }
                            notRun[configuration] = reason
                            progress.note("vcpufreq-bpf-map: \(reason); not run from here on")
                            done += 1
                            continue
                        }
                        measured = measure(target: target, rig: rig, program: program, round: round, calibration: calibration)
                        target.tearDown()
                    } else if configuration == .vcpufreqSchedExt {
                        switch measureSchedExt(rig: rig, program: program, round: round, calibration: calibration) {
                        case .success(let result): measured = result
                        case .failure(let reason):
                            notRun[configuration] = reason.description
                            progress.note("vcpufreq-sched-ext: \(reason); not run from here on")
                            done += 1
                            continue
                        }
                    } else if let target = rig.targets[configuration] {
                        measured = measure(target: target, rig: rig, program: program, round: round, calibration: calibration)
                    } else {
                        continue
                    }
                    runs.append(measured.0)
                    delays[configuration.name, default: []] += measured.1
                    if let failure = measured.0.failure { progress.note("\(configuration.name), \(program.test.name): \(failure)") }
                    done += 1
                    usleep(UInt32(max(settings.settleMilliseconds, 0)) * 1000)
                }
            }
        }
        progress.finish()
        hogs?.stop()

        // The table.
        let configurations = settings.configurations
        let testNames = settings.tests.map(\.name)
        let samples: [[[Analysis.Sample?]]] = configurations.map { configuration in
            testNames.map { test in
                (0..<settings.rounds).map { round in
                    guard let run = runs.first(where: {
                        $0.configuration == configuration.name && $0.test == test && $0.round == round
                    }), let raw = run.raw else { return nil }
                    return Analysis.Sample(raw: raw, cpuSeconds: run.cost.cpuSeconds)
                }
            }
        }
        var rows = Analysis.rows(
            samples: samples, configurations: configurations.map(\.name), tests: testNames, scaled: true,
            weightedTotal: true)
        for index in rows.indices {
            for (column, configuration) in configurations.enumerated() where notRun[configuration] != nil {
                rows[index].results[column].note = notRun[configuration]
            }
        }
        let actuators = rig.daemonActuators()
        let infos = configurations.map { configuration -> WorkloadResults.ConfigurationInfo in
            var info = WorkloadResults.ConfigurationInfo(
                name: configuration.name, summary: configuration.summary, ran: notRun[configuration] == nil,
                note: notRun[configuration])
            switch configuration {
            case .baseline: info.actuators = "none"
            case .crosvmStyle:
                info.actuators = "in the vCPU thread: uclamp sched_setattr (crosvm's call), EEVDF slice "
                    + "\(InProcessDevice.shortSliceNanoseconds / 1000) µs at or above half the maximum"
            case .vcpufreqMMIO, .vcpufreqSharedPage: info.actuators = actuators.map { "daemon: \($0)" }
            case .vcpufreqBPFMap: info.actuators = actuators.map { "host BPF programs read the slot; daemon: \($0)" }
            case .vcpufreqSchedExt: info.actuators = actuators.map { "daemon: \($0) + sched_ext" }
            }
            return info
        }
        var notes: [String] = []
        if let device = rig.targets[.crosvmStyle]?.inProcess {
            let counts = device.counts
            notes.append(
                "crosvm-style: \(counts.requests) set_perf writes handled in the vCPU threads; crosvm's uclamp sched_setattr "
                    + (counts.uclampFailures > 0
                        ? "failed \(counts.uclampFailures) times (errno \(counts.lastUclampErrno)\(counts.lastUclampErrno == 95 ? ", EOPNOTSUPP: no uclamp in this kernel" : ""))"
                        : "succeeded every time")
                    + "; \(counts.sliceChanges) slice changes, \(counts.sliceFailures) failed; \(counts.reads) cur_perf reads answered")
        }
        if let status = rig.targets.values.compactMap(\.connected).first.flatMap({ try? ConnectedVM.status(of: $0.client, allVMs: false) }) {
            for note in status.daemon.actuatorNotes { notes.append("daemon: \(note)") }
        }
        let energyReading = energy.read()
        let residencyReading = residency.read()
        let host = WorkloadResults.HostFacilities(
            energy: energyReading.map { "RAPL zones " + $0.microjoules.keys.sorted().joined(separator: ", ") }
                ?? "not on this host (no RAPL zone under \(energy.root))",
            frequencyResidency: residencyReading.map { "cpufreq stats of \($0.count) CPUs" }
                ?? "not on this host (no cpufreq stats under \(residency.root))",
            schedExt: SchedExt.hostUnavailableReason(root: schedExtRoot)
                ?? "sched_ext in the kernel (state \(SchedExt.kernelState(root: schedExtRoot) ?? "unknown"))")
        let results = WorkloadResults(
            mode: .guest, date: ISO8601DateFormatter().string(from: startedAt), uptimeBefore: uptimeBefore,
            uptimeAfter: Self.uptimeLine(), machine: machine,
            settings: .init(
                quick: settings.isQuick, rounds: settings.rounds, contention: settings.contention, vcpus: rig.vcpus,
                seed: settings.seed, secondsPerTest: settings.secondsPerTest, tickMicroseconds: settings.tickMicroseconds,
                peltPeriodMicroseconds: settings.peltPeriodMicroseconds, rateLimitMicroseconds: settings.rateLimitMicroseconds,
                tableKHz: WorkloadTopology.tableKHz, daemonArguments: settings.daemonArguments),
            contention: settings.contention.description(cpuCount: cpuCount),
            calibration: .init(
                tsc: calibration.tsc, spinNanosecondsPerIteration: calibration.spin.nanosecondsPerIteration,
                memoryIterationsPerMicrosecond: calibration.memoryIterationsPerMicrosecond, bufferBytes: settings.bufferBytes),
            configurations: infos, tests: rows,
            summaries: configurations.filter { notRun[$0] == nil }.map {
                ConfigurationSummary.of($0.name, runs: runs, vcpus: rig.vcpus, startDelays: delays[$0.name] ?? [])
            },
            host: host, runs: runs, notes: notes)
        return results
    }

    // MARK: One run

    /// Configuration 5's run: its own daemon loads the scheduler, the run
    /// happens only when both the daemon and the kernel say it is loaded;
    /// `.failure` says why not.
    func measureSchedExt(
        rig: WorkloadRig, program: TestProgram, round: Int, calibration: WorkloadRig.Calibration
    ) -> Result<(RunRecord, [Double]), SchedExtRefusal> {
        let opened: (DaemonProcess, GuestTarget, report: String?)
        do {
            opened = try rig.openSchedExt()
        } catch {
            return .failure(SchedExtRefusal("not run: the daemon with \(SchedExt.serveArguments.joined(separator: " ")) failed: \(error)"))
        }
        let (daemon, target, report) = opened
        defer {
            target.tearDown()
            _ = daemon.stop()
        }
        guard SchedExt.isLoaded(report) else {
            return .failure(SchedExtRefusal(
                "not run: the daemon reports the scheduler \(report.map { "\"\($0)\"" } ?? "nowhere (no daemon.scheduler in STATUS)")"))
        }
        guard SchedExt.kernelState(root: schedExtRoot) == "enabled" else {
            return .failure(SchedExtRefusal(
                "not run: the daemon says \"\(report ?? "")\" but the kernel's sched_ext state is \(SchedExt.kernelState(root: schedExtRoot) ?? "unreadable")"))
        }
        return .success(measure(target: target, rig: rig, program: program, round: round, calibration: calibration))
    }

    struct SchedExtRefusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs `program` on every vCPU of `target` at once and scores it; also
    /// returns the interactive jobs' release → running delays (µs).
    func measure(
        target: GuestTarget, rig: WorkloadRig, program: TestProgram, round: Int, calibration: WorkloadRig.Calibration
    ) -> (RunRecord, [Double]) {
        let tsc = calibration.tsc
        var record = RunRecord(
            configuration: target.configuration.name, test: program.test.name, round: round, raw: nil, cost: RunCost())
        let jobs = program.vcpus.map { specs in
            specs.map { spec in
                WorkloadParameters.Job(
                    interactive: spec.interactive, absoluteRelease: spec.absoluteRelease,
                    releaseTicks: UInt64(max(0, spec.releaseMicroseconds * tsc.ticksPerMicrosecond)),
                    computeIterations: calibration.spin.iterations(for: .nanoseconds(Int64(spec.computeMicroseconds * 1000))),
                    memoryIterations: UInt64(max(0, spec.memoryMicroseconds * calibration.memoryIterationsPerMicrosecond)))
            }
        }
        var scripts: [GuestScript] = []
        do throws(WorkloadBenchError) {
            for vcpu in 0..<target.vcpuCount {
                let block = target.block(vcpu: vcpu, settings: settings, tsc: tsc)
                scripts.append(try rig.write(block, jobs: vcpu < jobs.count ? jobs[vcpu] : [], into: target, vcpu: vcpu))
            }
        } catch {
            record.failure = "\(error)"
            return (record, [])
        }
        let statusBefore = try? target.connected?.status()
        let threadsBefore = target.threadIDs.map { ProcessAccounting.threadTime(pid: nil, tid: $0) }
        let daemonBefore = target.daemon.map { ProcessAccounting.processThreadTime(pid: $0.pid) }
        let energyBefore = energy.read()
        let residencyBefore = residency.read()
        let started = ContinuousClock.now
        let results = target.vm.run(scripts, timeout: .seconds(Int64(20 + 40 * settings.secondsPerTest)))
        record.cost.wallSeconds = Timing.seconds(ContinuousClock.now - started)
        let threadsAfter = target.threadIDs.map { ProcessAccounting.threadTime(pid: nil, tid: $0) }
        if let daemon = target.daemon, let before = daemonBefore {
            record.cost.daemonSeconds = Double((ProcessAccounting.processThreadTime(pid: daemon.pid) - before).runNanoseconds) / 1e9
        }
        if let before = energyBefore, let after = energy.read() { record.cost.energyJoules = EnergyMeter.joules(from: before, to: after) }
        if let before = residencyBefore, let after = residency.read() {
            record.cost.meanFrequencyMegahertz = FrequencyResidency.meanMegahertz(from: before, to: after)
        }
        if let before = statusBefore, let after = try? target.connected?.status() {
            record.cost.daemonRequests = after.counters.requests &- before.counters.requests
            record.cost.daemonKicks = after.counters.kicks &- before.counters.kicks
            record.cost.daemonPolls = after.counters.polls &- before.counters.polls
        }
        if target.configuration == .vcpufreqBPFMap, let shared = target.connected?.shared {
            let seen = (0..<target.vcpuCount).compactMap { shared.schedulerWords(vcpu: $0).seen }
            record.cost.schedulerSeenVCPUs = seen.filter { $0.utilization != nil }.count
            record.cost.schedulerRejectedVCPUs = seen.filter(\.rejected).count
        }
        record.cost.guestThreadSeconds = zip(threadsAfter, threadsBefore).reduce(0.0) {
            $0 + Double(($1.0 - $1.1).runNanoseconds) / 1e9
        }

        var timings: [[JobTiming]] = []
        var failures: [String] = []
        for (vcpu, result) in results.enumerated() {
            switch result {
            case .success(let run):
                record.cost.mmioReads += run.exits.mmioReads
                record.cost.mmioWrites += run.exits.mmioWrites
                record.cost.idleStores += run.exits.idle
                record.cost.idleSleepSeconds += Double(run.exits.idleNanoseconds) / 1e9
            case .failure(let error):
                failures.append("vCPU \(vcpu): \(error)")
            }
            let block = rig.regions.block(vcpu)
            if let state = WorkloadParameters.state(in: target.vm.ram, at: block) {
                record.cost.guestRequests += state.requests
                record.cost.guestKicks += state.kicks
                record.cost.guestTicks += state.ticks
            }
            let count = vcpu < jobs.count ? jobs[vcpu].count : 0
            let records = WorkloadParameters.records(in: target.vm.ram, at: block, count: count)
            timings.append(Self.timings(records, firstReleaseTicks: jobs[vcpu].first?.releaseTicks ?? 0, tsc: tsc))
        }
        guard failures.isEmpty else {
            record.failure = failures.joined(separator: "; ")
            return (record, [])
        }
        let outcome = TestOutcome.score(program: program, timings: timings)
        guard outcome.jobs == program.jobCount else {
            record.failure = "the guest recorded \(outcome.jobs) of \(program.jobCount) jobs"
            return (record, [])
        }
        record.outcome = outcome
        record.raw = outcome.raw
        var delays: [Double] = []
        for (specs, timed) in zip(program.vcpus, timings) {
            for (spec, timing) in zip(specs, timed) where spec.interactive { delays.append(timing.startDelay) }
        }
        return (record, delays)
    }

    /// A vCPU's records as µs from its start of the test (the first job's
    /// release minus its release offset: the op's start either way). Stops
    /// at the first record the guest did not complete.
    static func timings(_ records: [WorkloadParameters.Record], firstReleaseTicks: UInt64, tsc: TSCCalibration) -> [JobTiming] {
        guard let first = records.first, first.endTSC > 0, first.releaseTSC >= firstReleaseTicks else { return [] }
        let start = first.releaseTSC - firstReleaseTicks
        func microseconds(_ value: UInt64) -> Double { value >= start ? tsc.microseconds(ticks: value - start) : 0 }
        var result: [JobTiming] = []
        for record in records {
            guard record.endTSC > 0 else { break }
            result.append(JobTiming(
                release: microseconds(record.releaseTSC), start: microseconds(record.startTSC), end: microseconds(record.endTSC)))
        }
        return result
    }

    // MARK: Words

    /// uptime(1)'s line: the time, how long the machine has been up, the load averages.
    public static func uptimeLine() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        let clock = String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
        let seconds = Int(MachineDescription.uptimeSeconds() ?? 0)
        let days = seconds / 86_400
        let hours = (seconds % 86_400) / 3600
        let minutes = (seconds % 3600) / 60
        let up = (days > 0 ? "\(days) day\(days == 1 ? "" : "s"), " : "") + String(format: "%d:%02d", hours, minutes)
        let load = MachineDescription.loadAverages().map { String(format: "%.2f", $0) }.joined(separator: ", ")
        return "\(clock) up \(up), load average: \(load)"
    }

    /// "1 m 20 s", "45 s".
    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 60 ? "\(whole / 60) m \(whole % 60) s" : "\(whole) s"
    }
}
