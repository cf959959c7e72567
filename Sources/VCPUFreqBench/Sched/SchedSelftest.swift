import Foundation
import VCPUFreqBPF
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqLinux

/// `vcpufreq scheduler selftest`: the sched_ext scheduler on this kernel,
/// end to end through the real daemon, asserted from what the kernel
/// reports — the `sched_ext` facet of the kernel matrix. For test machines
/// and VMs: it starts and SIGKILLs daemons, ejects the scheduler with
/// sysrq-S and loads hogs on every CPU.
public struct SchedSelftest {
    public struct Options: Sendable {
        /// The vcpufreq binary whose `serve` and `scheduler run` are tested.
        public var executable: String
        /// Seconds per measured window (placement, each latency mode).
        public var seconds = 2.0
        public var hogsPerCPU = 2

        public init(executable: String) {
            self.executable = executable
        }
    }

    /// One assertion and what was seen.
    public struct Check: Codable, Equatable, Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    /// The facet's verdict, in the kernel matrix's words.
    public enum Verdict: String, Codable, Sendable {
        /// Every check passed on a kernel that has sched_ext.
        case verified
        /// The kernel has no (usable) sched_ext, and the daemon ran on saying why.
        case absent
        case failed
    }

    public struct Report: Codable, Sendable {
        public var facet = "sched_ext"
        public var verdict: Verdict
        public var kernel: String
        /// Why sched_ext is absent, or the first failed check.
        public var reason: String?
        public var checks: [Check]
        public var placement: SchedExperiment.Placement?
        public var latency: [SchedExperiment.Latency]
    }

    let options: Options
    private var checks: [Check] = []
    private var log: (String) -> Void

    public init(options: Options, log: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.log = log
    }

    private let started = Date()

    private mutating func check(_ name: String, _ passed: Bool, _ detail: String) {
        checks.append(Check(name: name, passed: passed, detail: detail))
        let elapsed = Date().timeIntervalSince(started)
        log("\(passed ? "ok  " : "FAIL") [\(Int(elapsed)) s] \(name): \(detail)")
    }

    public mutating func run() -> Report {
        let kernel = MachineDescription.current().kernel
        let cpus = (try? ThreadScheduling.affinity(of: ThreadScheduling.currentThreadID()).ids) ?? []
        let support = SchedExtSupport.probe()
        if let problem = support.problem {
            return absent(kernel: kernel, cpus: cpus, problem: problem)
        }
        guard cpus.count >= 2 else {
            return Report(
                verdict: .failed, kernel: kernel, reason: "needs two CPUs (a little and a big cluster), has \(cpus.count)",
                checks: [], placement: nil, latency: [])
        }
        var placement: SchedExperiment.Placement?
        var latency: [SchedExperiment.Latency] = []
        do {
            let lab = try SchedLab(executable: options.executable, cpus: cpus)
            defer { lab.cleanUp() }
            // The selftest's own threads stay on the little CPU, away from what it measures.
            try? ThreadScheduling.setAffinity(CPUList(lab.topology.little), of: ThreadScheduling.currentThreadID())
            let kernelLogBefore = SchedExtKernel.logLines().count
            try withScheduler(lab: lab, placement: &placement, latency: &latency)
            latency.append(try recoverAndSlice(lab: lab))
            latency.append(
                try SchedExperiment.latency(
                    lab: lab, mode: .eevdf, daemon: nil, seconds: options.seconds, hogsPerCPU: options.hogsPerCPU))
            try loadCycles(lab: lab)
            watchdog(since: kernelLogBefore)
            compareLatency(latency)
        } catch {
            check("selftest", false, "\(error)")
        }
        let failed = checks.first { !$0.passed }
        return Report(
            verdict: failed == nil ? .verified : .failed, kernel: kernel, reason: failed.map { "\($0.name): \($0.detail)" },
            checks: checks, placement: placement, latency: latency)
    }

    // MARK: Steps

    /// No sched_ext: the daemon asked for it must run on and say why.
    private mutating func absent(kernel: String, cpus: [Int], problem: String) -> Report {
        do {
            let lab = try SchedLab(executable: options.executable, cpus: cpus.count >= 2 ? cpus : [0, 0])
            defer { lab.cleanUp() }
            let daemon = try lab.startDaemon(scheduler: true)
            defer { daemon.stop() }
            let state = try lab.waitForScheduler(daemon, loaded: false).daemon.scheduler?.state ?? "-"
            check(
                "daemon without sched_ext", state.hasPrefix("not loaded: ") && state.contains(problem),
                "STATUS daemon.scheduler: \(state)")
        } catch {
            check("daemon without sched_ext", false, "\(error)")
        }
        let failed = checks.first { !$0.passed }
        return Report(
            verdict: failed == nil ? .absent : .failed, kernel: kernel, reason: failed.map { $0.detail } ?? problem,
            checks: checks, placement: nil, latency: [])
    }

    /// A daemon with the scheduler: loaded (sysfs names it), placement,
    /// latency and fairness with it; then SIGKILLed: the kernel unloads it.
    private mutating func withScheduler(
        lab: SchedLab, placement: inout SchedExperiment.Placement?, latency: inout [SchedExperiment.Latency]
    ) throws {
        let daemon = try lab.startDaemon(scheduler: true)
        defer { daemon.killWithoutWarning() }
        let document = try lab.waitForScheduler(daemon)
        check(
            "load", SchedExtKernel.rootScheduler == "vcpufreq" && SchedExtKernel.state == "enabled",
            "sysfs: state \(SchedExtKernel.state), root/ops \(SchedExtKernel.rootScheduler ?? "none"); STATUS: \(document.daemon.scheduler?.state ?? "-")")

        let placed = try SchedExperiment.placement(lab: lab, daemon: daemon, seconds: options.seconds)
        placement = placed
        check(
            "placement", placed.highShareOnBig >= 0.95 && placed.lowShareOnLittle >= 0.95,
            "util_min \(placed.highUtil) on big for \(percent(placed.highShareOnBig)) of its runtime \(placed.highByCPU), "
                + "util_min \(placed.lowUtil) on little for \(percent(placed.lowShareOnLittle)) \(placed.lowByCPU)")
        check(
            "slot read in place", placed.pageKind == "bpf-map" && (placed.slotReads ?? 0) > 0,
            "page \(placed.pageKind ?? "-"), \(placed.slotReads ?? 0) hint lookups answered from the guest's slot")
        let bigOK = placed.utilSumsBig.allSatisfy { [0, Int64(placed.highUtil)].contains($0) }
        let littleOK = placed.utilSumsLittle.allSatisfy { [0, Int64(placed.lowUtil)].contains($0) }
        check(
            "additive util", bigOK && littleOK && placed.utilSumsBig.contains(Int64(placed.highUtil)),
            "STATUS util_sum on big \(placed.utilSumsBig), on little \(placed.utilSumsLittle)")

        let run = try SchedExperiment.latency(
            lab: lab, mode: .schedExt, daemon: daemon, seconds: options.seconds, hogsPerCPU: options.hogsPerCPU)
        latency.append(run)
        check(
            "boosts", (run.boosts ?? 0) > 0 && (run.boostPreemptions ?? 0) > 0,
            "\(run.boosts ?? 0) boosts (\(run.boostPreemptions ?? 0) preempting, \(run.boostsExpired ?? 0) ran out, \(run.boostsDenied ?? 0) denied), "
                + "\((run.boostedRuntimeNanoseconds ?? 0) / 1000) µs boosted in \(run.wakeups) wake-ups")
        let unfair = SchedExperiment.fairnessProblem(run, big: lab.topology.big)
        check("fairness", unfair == nil, unfair ?? "hogs \(run.hogs.map { "cpu\($0.cpu) \($0.runtimeNanoseconds / 1_000_000) ms" }.joined(separator: ", ")) of \(Int(run.seconds * 1000)) ms")
        // The nice-10 thread is owed ~5 % of its CPU by weight; a quarter of that proves it is not starved.
        let owed = SchedExperiment.backgroundShare(hogsPerCPU: run.hogsPerCPU) * run.seconds * 1e9
        check(
            "non-vCPU tasks progress",
            Double(run.backgroundRuntimeNanoseconds) >= owed / 4 && run.hogs.allSatisfy { $0.runtimeNanoseconds > 0 },
            "nice-10 thread ran \(run.backgroundRuntimeNanoseconds / 1_000_000) ms (owed \(Int(owed / 1e6)) ms by weight), every hog ran")
        // ... and at most twice that (a nice-0 hog beside it gets ~9 ×): nice is honoured in the
        // first windows of a load too (placement then this one), where a wrapped per-CPU clock
        // (vtime_now) once made every queue FIFO and gave it a hog's share. (A spinner started
        // before the load hid that: alone on the big CPU it pushes that CPU's clock past the
        // few ms of lag that wrapped it.)
        let clocks = (try? lab.status(daemon).daemon.scheduler?.cpus.map { "cpu\($0.cpu) \($0.virtualTimeNanoseconds ?? 0)" }) ?? nil
        check(
            "nice honoured after the load",
            Double(run.backgroundRuntimeNanoseconds) <= 2 * owed,
            "nice-10 thread ran \(run.backgroundRuntimeNanoseconds / 1_000_000) ms, at most \(Int(2 * owed / 1e6)) ms (2 × its weight's share); "
                + "vtime_now \(clocks?.joined(separator: ", ") ?? "-")")

        // A thread left hinted when the daemon dies (the next daemon recovers it).
        try recordOriginal(lab: lab)
        guard let survivor else { return }
        let vm = try SchedVM(lab: lab, daemon: daemon, name: "survivor", threads: [survivor])
        try vm.request(vcpu: 0, utilization: 700, latency: true, sliceMicroseconds: UInt32(lab.topology.latencySliceMicroseconds))
        let hinted = try ThreadAttributes.read(tid: survivor.tid)
        check("hint applied with the scheduler", hinted.utilMin == 700, "sched_getattr: \(hinted)")
        // The same daemon sees the kernel eject its scheduler (one daemon start less under TCG).
        try eject(lab: lab, daemon: daemon)
        daemon.killWithoutWarning()
    }

    /// The thread left hinted by the SIGKILLed daemon, and its attributes before.
    private var survivor: SchedWorker?
    private var survivorOriginal: ThreadAttributes?

    private mutating func recordOriginal(lab: SchedLab) throws {
        let worker = SchedWorker(
            name: "sched-survivor", body: .burnAndSleep(burnNanoseconds: 200_000, sleepNanoseconds: 5_000_000),
            cpus: CPUList(lab.topology.cpus))
        worker.start()
        survivor = worker
        survivorOriginal = try ThreadAttributes.read(tid: worker.tid)
    }

    /// A daemon without the scheduler: it recovers the killed daemon's
    /// journal first (the thread's attributes and its util-hint entry), then
    /// the latency run with the EEVDF slice as the latency hint.
    private mutating func recoverAndSlice(lab: SchedLab) throws -> SchedExperiment.Latency {
        let daemon = try lab.startDaemon(scheduler: false)
        defer { daemon.stop() }
        let document = try lab.status(daemon)
        if let survivor, let original = survivorOriginal {
            let now = try ThreadAttributes.read(tid: survivor.tid)
            let entry = try? BPFMap.openPinned(path: lab.pinPath).lookup(key: withUnsafeBytes(of: UInt32(survivor.tid)) { Array($0) })
            check(
                "restart recovers", now == original && entry == nil && document.daemon.recoveredThreads >= 1,
                "after the next daemon's journal recovery (\(document.daemon.recoveredThreads) threads): \(now) (before: \(original)); util-hint entry \(entry == nil ? "gone" : "still there")")
            survivor.stop()
            self.survivor = nil
        }
        return try SchedExperiment.latency(
            lab: lab, mode: .eevdfSlice, daemon: daemon, seconds: options.seconds, hogsPerCPU: options.hogsPerCPU)
    }

    /// Loaded, then sysrq-S: STATUS says ejected, a new request still reaches
    /// the thread through uclamp, its detach restores it.
    private mutating func eject(lab: SchedLab, daemon: DaemonProcess) throws {
        let worker = SchedWorker(
            name: "sched-eject", body: .burnAndSleep(burnNanoseconds: 200_000, sleepNanoseconds: 5_000_000),
            cpus: CPUList(lab.topology.cpus))
        worker.start()
        defer { worker.stop() }
        let original = try ThreadAttributes.read(tid: worker.tid)
        let vm = try SchedVM(lab: lab, daemon: daemon, name: "eject", threads: [worker])
        let slice = UInt32(lab.topology.latencySliceMicroseconds)
        try vm.request(vcpu: 0, utilization: 300, latency: false, sliceMicroseconds: slice)
        let sysrq = SchedExtKernel.sysrqReset()
        let unloaded = SchedExtKernel.waitUntilDisabled()
        let deadline = Date().addingTimeInterval(10)
        var state = "-"
        while Date() < deadline {
            state = try lab.status(daemon).daemon.scheduler?.state ?? "-"
            if state.hasPrefix("ejected") { break }
            usleep(50_000)
        }
        check(
            "eject noticed", sysrq && unloaded && state.hasPrefix("ejected by the kernel: sysrq"),
            "sysfs: state \(SchedExtKernel.state); STATUS: \(state)")
        try vm.request(vcpu: 0, utilization: 650, latency: false, sliceMicroseconds: slice)
        let after = try ThreadAttributes.read(tid: worker.tid)
        check("serves after the eject", after.utilMin == 650, "a request after the eject: sched_getattr \(after)")
        vm.detach()
        let restored = try ThreadAttributes.read(tid: worker.tid)
        check("restored", restored == original, "after detach: \(restored) (before: \(original))")
    }

    /// `scheduler run` loaded and unloaded twice: each time the kernel
    /// enables it (enable_seq grows) and ends disabled. The first run ends by
    /// itself (--duration-s: it closes its link), the second is SIGKILLed once
    /// sysfs shows it loaded: the kernel unregisters it with the process (the
    /// link the daemon holds too).
    private mutating func loadCycles(lab: SchedLab) throws {
        var details: [String] = []
        var passed = true
        for killed in [false, true] {
            let sequence = SchedExtKernel.enableSequence
            let arguments = [
                options.executable, "scheduler", "run", "--topology", lab.topologyPath, "--bpf-pin-path", lab.pinPath,
                "--duration-s", killed ? "0" : "1",
            ]
            let child = try ChildProcess(arguments)
            var outcome = "exit"
            if killed {
                let deadline = Date().addingTimeInterval(SchedLab.schedulerTimeoutSeconds)
                while Date() < deadline, SchedExtKernel.rootScheduler != "vcpufreq", child.isRunning { usleep(50_000) }
                let wasLoaded = SchedExtKernel.rootScheduler == "vcpufreq"
                child.send(SIGKILL)
                passed = passed && wasLoaded
                outcome = wasLoaded ? "SIGKILL while loaded" : "never loaded"
            }
            let ended = child.wait()
            let disabled = SchedExtKernel.waitUntilDisabled()
            let grew = SchedExtKernel.enableSequence > sequence
            let clean: Bool = {
                if case .exited(0) = ended { return true }
                if killed, case .signaled(SIGKILL) = ended { return true }
                return false
            }()
            passed = passed && clean && disabled && grew
            details.append(
                "\(outcome) (\(ended.map { "\($0)" } ?? "-")), enable_seq \(sequence)→\(SchedExtKernel.enableSequence), \(SchedExtKernel.state)")
        }
        check("load/unload cycles, SIGKILL unloads", passed, details.joined(separator: "; "))
    }

    /// The kernel's log since the start: every disable was ours or the sysrq.
    private mutating func watchdog(since index: Int) {
        let lines = SchedExtKernel.logLines().dropFirst(index).filter { $0.contains(" disabled") }
        let allowed = ["unregistered from user space", "disabled by sysrq-S"]
        let bad = lines.filter { line in !allowed.contains { line.contains($0) } }
        check("no watchdog or error eject", bad.isEmpty && !lines.isEmpty, bad.isEmpty ? "\(lines.count) disables, all unregistrations or the sysrq" : bad.joined(separator: "; "))
    }

    private mutating func compareLatency(_ runs: [SchedExperiment.Latency]) {
        func run(_ mode: SchedExperiment.LatencyMode) -> SchedExperiment.Latency? { runs.first { $0.mode == mode } }
        guard let eevdf = run(.eevdf), let slice = run(.eevdfSlice), let ext = run(.schedExt) else {
            check("latency", false, "a mode did not run")
            return
        }
        check(
            "latency", ext.kernelMeanRunDelayMicroseconds < eevdf.kernelMeanRunDelayMicroseconds && ext.wakeups > 0,
            runs.map {
                "\($0.mode.rawValue): p99 \(Int($0.p99Microseconds)) µs, kernel mean run delay \(Int($0.kernelMeanRunDelayMicroseconds)) µs, "
                    + "nice-10 thread \($0.backgroundRuntimeNanoseconds / 1_000_000) ms"
            }
                .joined(separator: "; ") + " (slice: \(Int(slice.p99Microseconds)) µs p99)")
    }

    private func percent(_ share: Double) -> String { "\(Int((share * 1000).rounded()) / 10).\(Int((share * 1000).rounded()) % 10)%" }
}
