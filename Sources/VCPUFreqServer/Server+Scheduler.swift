import Logging
import SystemPackage
import VCPUFreqBPF
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

extension ServerConfiguration {
    /// Which host scheduler the daemon loads (docs/scheduler.md).
    public struct SchedulerOptions: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            /// The kernel's own (EEVDF); the default.
            case none
            /// bpf/vcpufreq_sched.bpf.c, a sched_ext scheduler reading the util-hint map.
            case schedExt = "sched-ext"
        }

        public var kind: Kind = .none
        public var settings = SchedulerSettings()

        public init(kind: Kind = .none, settings: SchedulerSettings = SchedulerSettings()) {
            self.kind = kind
            self.settings = settings
        }
    }
}

/// The sched_ext scheduler in the daemon (`serve --scheduler sched-ext`):
/// loaded once the daemon is up, unloaded at exit (and by the kernel if the
/// daemon dies: it is registered through a link the process holds). Its
/// input is the util-hint map, so every applied hint goes there as well as
/// to the plan's clamp (`PairedActuator`). When the kernel ejects it, the
/// daemon says so in its log and STATUS and goes on with its other
/// actuators; it does not load it again by itself.
final class DaemonScheduler {
    let requested: Bool
    private let scheduler: SchedExtScheduler?
    /// Why it cannot be loaded at all (nil when it can be tried).
    private let unavailable: String?
    private let clusters: SchedulerClusters?
    private let logger: Logger
    private(set) var ejections = 0
    private var lastState: SchedulerState = .notStarted

    init(options: ServerConfiguration.SchedulerOptions, bpf: DaemonBPF, host: HostTopology, logger: Logger) {
        self.logger = logger
        requested = options.kind == .schedExt
        guard requested else {
            (scheduler, unavailable, clusters) = (nil, nil, nil)
            return
        }
        let clusters: SchedulerClusters
        do {
            clusters = try SchedulerClusters(host: host)
        } catch {
            (scheduler, unavailable, self.clusters) = (nil, "the topology: \(error)", nil)
            return
        }
        self.clusters = clusters
        guard let pin = bpf.monitor?.status.utilHintPinPath else {
            scheduler = nil
            unavailable = "it reads the pinned util-hint map, and the BPF programs have none (\(bpf.summary))"
            return
        }
        var configuration = SchedExtScheduler.Configuration(utilHintPinPath: pin, clusters: clusters)
        configuration.settings = options.settings
        scheduler = SchedExtScheduler(configuration: configuration)
        unavailable = nil
    }

    /// The actuator that keeps the util-hint map current beside the plan's
    /// clamp; nil when no scheduler was asked for or the plan's clamp is the
    /// map already.
    static func mapMirror(requested: Bool, plan: ActuationPlan, bpf: DaemonBPF) -> (any ThreadActuator)? {
        guard requested, plan.clamp != .bpfMap, let monitor = bpf.monitor, monitor.status.utilHintPinPath != nil else {
            return nil
        }
        return BPFMapActuator(monitor: monitor)
    }

    /// Loads and registers the scheduler; the descriptor to watch for its
    /// eject, or nil. Logs what happened.
    func start(plan: ActuationPlan) -> FileDescriptor? {
        guard requested else { return nil }
        guard let scheduler else {
            lastState = .notLoaded(unavailable ?? "unavailable")
            logger.warning("sched_ext scheduler not loaded; the host keeps its own scheduler", metadata: ["reason": "\(unavailable ?? "?")"])
            return nil
        }
        let status = scheduler.start()
        lastState = status.state
        guard status.isRunning else {
            logger.warning(
                "sched_ext scheduler not loaded; the host keeps its own scheduler",
                metadata: ["reason": "\(status.summary.dropFirst("not loaded: ".count))"])
            return nil
        }
        logger.notice("sched_ext scheduler loaded", metadata: ["scheduler": "\(status.summary)", "plan": "\(plan)"])
        return FileDescriptor(rawValue: scheduler.exitDescriptor)
    }

    /// Looks whether the kernel ejected it; logs the transition once.
    /// Returns true when it was ejected just now.
    @discardableResult
    func refresh(plan: ActuationPlan) -> Bool {
        guard let scheduler, lastState == .running else { return false }
        let status = scheduler.checkExit()
        lastState = status.state
        guard case .ejected(let exit) = status.state else { return false }
        ejections += 1
        logger.warning(
            "sched_ext scheduler ejected by the kernel; the host is back on the fair scheduler and hints keep going to the other actuators",
            metadata: ["exit": "\(exit)", "kind": "\(exit.kind)", "actuators": "\(plan)"])
        return true
    }

    /// Unloads it (after an eject: releases what is left of it).
    func stop() {
        guard let scheduler else { return }
        let wasRunning = lastState == .running
        scheduler.stop()
        lastState = scheduler.status.state
        if wasRunning { logger.notice("sched_ext scheduler unloaded") }
    }

    /// `daemon.scheduler` of STATUS; nil when none was asked for.
    var document: StatusDocument.Scheduler? {
        guard requested else { return nil }
        let summary: String
        if let scheduler {
            summary = scheduler.status.summary
        } else {
            summary = "not loaded: \(unavailable ?? "unavailable")"
        }
        let snapshot = scheduler?.snapshot()
        let cpus = (snapshot?.cpus ?? []).map { cpu in
            StatusDocument.Scheduler.CPU(
                cpu: cpu.cpu, cluster: cpu.clusterRank.flatMap { clusters?.ranked[$0].name }, utilSum: cpu.utilSum,
                hintedRunnable: cpu.hintedRunnable, hintedRuntimeNanoseconds: cpu.hintedRuntimeNanoseconds,
                boostedRuntimeNanoseconds: cpu.boostedRuntimeNanoseconds, virtualTimeNanoseconds: cpu.virtualTimeNanoseconds)
        }
        return StatusDocument.Scheduler(
            state: summary, loaded: scheduler?.status.isRunning ?? false, ejections: ejections, cpus: cpus,
            counters: snapshot?.counters.byName ?? [:])
    }
}
