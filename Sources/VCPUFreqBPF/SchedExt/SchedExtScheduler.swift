import Glibc
import Synchronization

/// The loader of bpf/vcpufreq_sched.bpf.c: a sched_ext scheduler placing
/// hinted vCPU threads by capacity and boosting latency-flagged ones
/// (docs/scheduler.md). Thin: the policy is all in the BPF program.
///
/// `start()` never throws: the status says whether the scheduler runs or why
/// not (no sched_ext, another scheduler, the verifier's refusal, ops.init()).
/// The scheduler is registered through a BPF link, so it goes when `stop()`
/// closes the link — or when this process dies, by the kernel's hand. When
/// the kernel ejects it, `exitDescriptor` becomes readable; `checkExit()`
/// then records why and lets the object go. The fallback to the fair
/// scheduler is the kernel's.
public final class SchedExtScheduler: Sendable {
    public struct Configuration: Sendable {
        /// The pinned util-hint map the scheduler reads (the daemon's); created
        /// and pinned there when absent, so a daemon started later reuses it.
        public var utilHintPinPath: String
        public var clusters: SchedulerClusters
        public var settings = SchedulerSettings()
        public var objectBytes: [UInt8] = BundledObject.scheduler
        public var objectName: String = BundledObject.schedulerName
        public var sysfsRoot: String = SchedExtSupport.defaultSysfsRoot
        public var btfPath: String = SchedExtSupport.defaultBTFPath

        public init(utilHintPinPath: String, clusters: SchedulerClusters) {
            self.utilHintPinPath = utilHintPinPath
            self.clusters = clusters
        }
    }

    /// Names in bpf/vcpufreq_sched.bpf.c.
    static let opsMap = "vcpufreq_ops"
    static let initProgram = "vcpufreq_init"
    static let maps = (
        hints: "util_hint", config: "sched_config", clusters: "clusters", cpus: "cpu_state", counters: "counters",
        exit: "exit_info", exitEvents: "exit_events"
    )

    public let configuration: Configuration

    private struct State {
        var status = SchedulerStatus()
        var object: BPFObject?
        var link: BPFLink?
        var cpuStateFD: Int32 = -1
        var countersFD: Int32 = -1
        var exitFD: Int32 = -1
        var exitEventsFD: Int32 = -1
        var cpuCount = 0
    }

    private let state = Mutex(State())

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    deinit { stop() }

    public var status: SchedulerStatus { state.withLock { $0.status } }

    /// Readable once the kernel has disabled the scheduler (ops.exit() posted
    /// to "exit_events"): poll it, then call `checkExit()`. -1 when not running.
    public var exitDescriptor: Int32 { state.withLock { $0.exitEventsFD } }

    // MARK: - Start and stop

    /// Loads, configures and registers the scheduler; reads back from sysfs
    /// that the kernel runs it. Calling it while running changes nothing.
    @discardableResult
    public func start() -> SchedulerStatus {
        state.withLock { state in
            if state.status.isRunning { return state.status }
            var fresh = State()
            fresh.status.clusters = configuration.clusters
            do {
                try load(into: &fresh)
                fresh.status.state = .running
                fresh.status.hintPinPath = configuration.utilHintPinPath
            } catch let failure as StartFailure {
                fresh.link?.destroy()
                fresh = State()
                fresh.status.clusters = configuration.clusters
                fresh.status.state = .notLoaded(failure.reason)
            } catch {
                fresh.link?.destroy()
                fresh = State()
                fresh.status.clusters = configuration.clusters
                fresh.status.state = .notLoaded("\(error)")
            }
            state = fresh
            return state.status
        }
    }

    private struct StartFailure: Error { var reason: String }

    private func load(into state: inout State) throws {
        if let problem = configuration.settings.problem { throw StartFailure(reason: "settings: \(problem)") }
        if let problem = SchedExtSupport.probe(sysfsRoot: configuration.sysfsRoot, btfPath: configuration.btfPath).problem {
            throw StartFailure(reason: problem)
        }
        let cpuCount = LibBPF.possibleCPUCount()
        guard cpuCount <= LibBPF.schedulerMaxCPUs else {
            throw StartFailure(
                reason: "this host has \(cpuCount) possible CPUs; the scheduler handles at most \(LibBPF.schedulerMaxCPUs)")
        }
        let clusters = configuration.clusters.ranked
        let object = try BPFObject(bytes: configuration.objectBytes, name: configuration.objectName)
        try object.setPinPath(configuration.utilHintPinPath, map: Self.maps.hints)
        state.status.sharedSlotMaps = try reuseSlotMaps(of: object)
        try object.registerThroughLink(structOps: Self.opsMap)
        try object.setSleepable(program: Self.initProgram)
        try object.load()

        // Configuration before registration: ops.init() reads it.
        let config = try object.map(named: Self.maps.config)
        try config.check(
            LibBPF.writeSchedulerConfig(
                fd: config.fd, configuration.settings, clusterCount: clusters.count, cpuCount: cpuCount), "update")
        let clusterMap = try object.map(named: Self.maps.clusters)
        for (rank, cluster) in clusters.enumerated() {
            try clusterMap.check(
                LibBPF.writeSchedulerCluster(fd: clusterMap.fd, rank: rank, capacity: cluster.capacity, cpus: cluster.cpus),
                "update")
        }
        let cpus = try object.map(named: Self.maps.cpus)
        for cpu in 0..<cpuCount {
            try cpus.check(
                LibBPF.writeSchedulerCPU(fd: cpus.fd, cpu: cpu, clusterRank: configuration.clusters.rank(ofCPU: cpu)),
                "update")
        }
        let exit = try object.map(named: Self.maps.exit)

        let link: BPFLink
        do {
            link = try object.attachStructOps(map: Self.opsMap)
        } catch let error as BPFError {
            // ops.exit() runs even when registration fails: the kernel's own words.
            let said = LibBPF.readSchedulerExit(fd: exit.fd).map { "; the kernel said: \($0)" } ?? ""
            throw StartFailure(reason: "\(error)\(said)")
        }
        state.link = link
        // Read back what the kernel runs.
        let sysfs = SchedExtSupport.sysfsState(sysfsRoot: configuration.sysfsRoot)
        if let exited = LibBPF.readSchedulerExit(fd: exit.fd) {
            link.destroy()
            throw StartFailure(reason: "the kernel disabled it at once: \(exited)")
        }
        guard sysfs?.loadedScheduler == state.status.name else {
            link.destroy()
            throw StartFailure(
                reason: "registered, but /sys/kernel/sched_ext/root/ops shows \(sysfs?.loadedScheduler.map { "'\($0)'" } ?? "nothing")"
                    + " (state \(sysfs?.state ?? "unknown"))")
        }
        state.object = object
        state.cpuStateFD = cpus.fd
        state.countersFD = try object.map(named: Self.maps.counters).fd
        state.exitFD = exit.fd
        state.exitEventsFD = try object.map(named: Self.maps.exitEvents).fd
        state.cpuCount = cpuCount
    }

    /// The shared-page maps of vcpufreq_slot.h, pinned by the daemon beside
    /// the util-hint map, that the scheduler reads the guests' slots through:
    /// each one pinned there is reused (at its size, which libbpf checks);
    /// without them the scheduler keeps empty private ones and reads the
    /// util-hint map only. The paths reused.
    private func reuseSlotMaps(of object: BPFObject) throws -> [String] {
        let path = configuration.utilHintPinPath
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let names = [LibBPF.vmPagesMapName, LibBPF.vmCapsMapName, LibBPF.vcpuThreadsMapName, LibBPF.cpuInfoMapName]
        let pinned = names.map { (name: $0, path: directory + "/" + $0) }.compactMap { entry in
            LibBPF.pinnedMapMaxEntries(path: entry.path).map { (entry.name, entry.path, $0) }
        }
        // All four or none: a lookup needs every step.
        guard pinned.count == names.count else { return [] }
        for (name, path, entries) in pinned {
            try object.setMaxEntries(entries, map: name)
            try object.setPinPath(path, map: name)
        }
        return pinned.map(\.1)
    }

    /// Unregisters the scheduler (closes its link: the kernel switches every
    /// task back to the fair class) and closes the object. The pinned hint
    /// map stays.
    public func stop() {
        state.withLock { state in
            guard state.object != nil else { return }
            state.link?.destroy()
            let clusters = state.status.clusters
            let ejected: SchedulerExit? = {
                if case .ejected(let exit) = state.status.state { return exit }
                return nil
            }()
            state = State()
            state.status.clusters = clusters
            state.status.state = ejected.map { .ejected($0) } ?? .stopped
        }
    }

    /// Whether the kernel has disabled the scheduler: its exit record, or
    /// sysfs no longer naming it. When it has, records why (`.ejected`) and
    /// closes the link; the maps stay readable (the last counters) and
    /// `exitDescriptor` open until `stop()`, so a caller can take it out of
    /// its epoll set first.
    @discardableResult
    public func checkExit() -> SchedulerStatus {
        state.withLock { state in
            guard state.status.isRunning, state.exitFD >= 0 else { return state.status }
            var exit = LibBPF.readSchedulerExit(fd: state.exitFD)
            if exit == nil {
                // At every STATUS: sysfs only, never the BTF.
                let loaded = SchedExtSupport.sysfsState(sysfsRoot: configuration.sysfsRoot)?.loadedScheduler
                guard loaded != state.status.name else { return state.status }
                exit = SchedulerExit(
                    kind: 0, code: 0, cpu: -1, reason: "no exit record",
                    message: "/sys/kernel/sched_ext/root/ops shows \(loaded ?? "nothing")")
            }
            state.link?.destroy()
            state.link = nil
            state.status.state = .ejected(exit!)
            return state.status
        }
    }

    // MARK: - Reading

    /// Every CPU's entry of "cpu_state" and the summed counters; nil when not running.
    /// (After an eject, until `stop()`: the last values.)
    public func snapshot() -> (cpus: [SchedulerCPUState], counters: SchedulerCounters)? {
        state.withLock { state in
            guard state.cpuStateFD >= 0, let counters = LibBPF.readSchedulerCounters(fd: state.countersFD) else {
                return nil
            }
            let cpus = (0..<state.cpuCount).compactMap { LibBPF.readSchedulerCPU(fd: state.cpuStateFD, cpu: $0) }
            return (cpus, counters)
        }
    }
}
