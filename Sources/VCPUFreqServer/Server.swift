import Foundation
import Logging
import SystemPackage
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// The daemon: one epoll loop over the listening socket, the VMM
/// connections, every VM's doorbell eventfds, a signalfd and one timerfd
/// (policy timers, polls, frequency refresh, metrics). Single-threaded, so
/// VMs share no locks; a bad message closes its own connection only, and
/// every way out (detach, disconnect, protocol error, SIGTERM) restores the
/// VM's threads.
public final class Server {
    public static let version = "0.1.0"

    let configuration: ServerConfiguration
    let logger: Logger
    /// What the state directory names: pin directory, cgroup parent.
    let instance: DaemonInstance
    /// State directory, socket and metrics file are this daemon's alone while it runs.
    let locks: InstanceLocks
    let epoll: Epoll
    var listener: SeqPacketListener?
    let signals: SignalFD
    let timer: TimerFD
    let capabilities: HostCapabilities
    let plan: ActuationPlan
    let controller: ThreadController
    let journal: RestoreJournal?
    let procfs = ProcFS()
    let frequency: FrequencyMonitor
    let bpf: DaemonBPF
    let scheduler: DaemonScheduler
    /// Writes `--metrics-file` off the loop; nil without one.
    let metricsWriter: MetricsFileWriter?
    /// Resolved VM model per profile name, with the latency hint the host supports.
    let models: [String: VMModel]
    let startTime = MonotonicClock.nowNanoseconds()
    /// Shared page generation: differs between daemon runs, so a guest whose
    /// page outlived a daemon restart re-publishes.
    let generation: UInt32
    let daemonUID = getuid()

    var connections: [UInt32: Connection] = [:]
    var sessions: [UInt32: VMSession] = [:]
    var attachedTIDs: Set<Int32> = []
    var attachedVCPUs = 0
    var nextConnectionID: UInt32 = 1
    var nextVMID: UInt32 = 1
    /// `--vhost-user-scmi` sockets, their connected SCMI devices (by device
    /// id) and the devices with chains left for the next turn.
    var vhostListeners: [VhostUserSCMIListener] = []
    var scmiDevices: [UInt32: SCMIDevice] = [:]
    var pendingSCMI: Set<UInt32> = []
    var nextSCMIDeviceID: UInt32 = 1
    private(set) var recoveredThreads = 0
    /// The loop's wake-ups by source (STATUS `daemon.wakeups`).
    private(set) var wakeups = StatusDocument.Wakeups()
    /// The deadline the timerfd is armed for; nil once it fired (or never armed).
    private var armedDeadline: UInt64?
    private var nextFrequencyRefresh: UInt64?
    private var nextMetrics: UInt64?
    /// accept() failed for lack of a resource (EMFILE, ENFILE, ENOBUFS):
    /// the listener is out of the epoll set until then, so a level-triggered
    /// listener with a pending connection does not spin the loop.
    var acceptPausedUntil: UInt64?
    private var stopping = false
    /// Readable when the kernel ejected the sched_ext scheduler.
    private var schedulerExit: FileDescriptor?
    private let ready = EpollReadyBuffer(capacity: 64)

    // Epoll tokens: the top byte says what, the rest which.
    static let listenerToken: UInt64 = 1
    static let signalToken: UInt64 = 2
    static let timerToken: UInt64 = 3
    static let connectionKind: UInt64 = 4 << 56
    static let doorbellKind: UInt64 = 5 << 56
    static let schedulerToken: UInt64 = 6

    /// Messages read from one connection per wake-up: a VMM that keeps its
    /// socket full cannot starve the other VMs' connections and doorbells
    /// (the socket is level-triggered, so the rest is read on the next turn).
    static let messagesPerWakeup = 64
    /// How long accepting pauses after accept() ran out of a resource.
    static let acceptPauseNanoseconds: UInt64 = 100_000_000

    /// Everything the daemon needs before its first connection: capability
    /// detection and the actuator plan, crash recovery from the journal, the
    /// socket. Fails with a message for the operator.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        generation = UInt32(truncatingIfNeeded: MonotonicClock.nowNanoseconds() >> 10) | 1

        // Block SIGTERM/SIGINT/SIGHUP before anything can start a thread:
        // a thread created with them unblocked could take a SIGTERM and
        // kill the daemon without restoring a single thread.
        signals = try Self.make("signalfd") { () throws(Errno) in try SignalFD() }

        // Before anything that another daemon could be using: a second
        // daemon on this state directory, socket or metrics file stops
        // here, having changed nothing.
        instance = configuration.instance(workingDirectory: FileManager.default.currentDirectoryPath)
        locks = try InstanceLocks(configuration: configuration, instance: instance, logger: logger)
        logger.info("instance", metadata: [
            "state_dir": "\(instance.stateDirectory)", "name": "\(instance.qualifiedName)", "pid": "\(getpid())",
        ])

        var bpfSettings = configuration.bpf
        bpfSettings.maximumPageVMs = configuration.maximumVMs
        bpf = try DaemonBPF(
            settings: bpfSettings, pinPath: configuration.utilHintPinPath(instance), instance: instance,
            host: configuration.topology.host,
            recordsPins: !configuration.dryRun, stoppingWaitMilliseconds: configuration.stoppingDaemonWaitMilliseconds,
            logger: logger)
        capabilities = HostCapabilities.detect().with(bpfMap: bpf.capability)
        plan = capabilities.plan(
            clamp: configuration.clampPreference, latency: configuration.latencyPreference,
            affinity: configuration.pinThreads)
        for (facet, capability) in [
            ("uclamp", capabilities.uclamp), ("cgroup_uclamp", capabilities.cgroupUclamp),
            ("eevdf_slice", capabilities.eevdfSlice), ("nice", capabilities.nice), ("affinity", capabilities.affinity),
            ("bpf_map", capabilities.bpfMap), ("bpf_map_page", bpf.pageCapability),
        ] {
            logger.info("capability", metadata: ["facet": "\(facet)", "detected": "\(capability)"])
        }
        logger.info("actuators", metadata: ["plan": "\(plan)", "dry_run": "\(configuration.dryRun)"])
        for note in plan.notes { logger.notice("\(note)") }

        if configuration.dryRun {
            journal = nil
        } else {
            do {
                journal = try RestoreJournal(stateDirectory: configuration.stateDirectory)
            } catch {
                throw ServerError("cannot use state directory \(configuration.stateDirectory): \(error)")
            }
        }
        let recorder: RecordingActuator?
        if let path = configuration.recordPath {
            do { recorder = try RecordingActuator(path: path) } catch {
                throw ServerError("cannot open record file \(path): \(error)")
            }
        } else if configuration.dryRun {
            recorder = RecordingActuator(descriptor: .standardOutput)
        } else {
            recorder = nil
        }
        scheduler = DaemonScheduler(
            options: configuration.scheduler, bpf: bpf, host: configuration.topology.host, logger: logger)
        controller = plan.makeController(
            cgroupParent: configuration.cgroupParent ?? instance.cgroupParent, clampOverride: bpf.clampActuator(for: plan),
            clampMirror: DaemonScheduler.mapMirror(requested: scheduler.requested, plan: plan, bpf: bpf),
            recoveryActuators: bpf.recoveryActuators,
            recorder: recorder, applies: !configuration.dryRun, journal: journal)

        var models: [String: VMModel] = [:]
        for profile in configuration.topology.vms {
            var model = try configuration.topology.model(forVM: profile.name)
            model.policy.latencyHint = Self.latencyHint(wanted: model.policy.latencyHint, plan: plan)
            models[profile.name] = model
        }
        self.models = models
        frequency = FrequencyMonitor(host: configuration.topology.host, sysfsRoot: configuration.sysfsRoot)
        metricsWriter = configuration.metricsPath.map { MetricsFileWriter(path: $0, logger: logger) }

        epoll = try Self.make("epoll") { () throws(Errno) in try Epoll() }
        timer = try Self.make("timerfd") { () throws(Errno) in try TimerFD() }

        // A daemon killed with SIGKILL left hints on threads: put them back
        // before any VMM can reconnect and have its "originals" captured.
        if let journal {
            let report = journal.recover(with: controller)
            recoveredThreads = report.restored.count
            if !report.restored.isEmpty || !report.gone.isEmpty || !report.reused.isEmpty || !report.failed.isEmpty {
                logger.notice("recovered journal of a previous daemon", metadata: [
                    "restored": "\(report.restored.count)", "gone": "\(report.gone.count)",
                    "tid_reused": "\(report.reused.count)", "failed": "\(report.failed.count)",
                ])
            }
        }

        let access = SeqPacketListener.Access(
            mode: configuration.socketGroupID == nil ? 0o600 : 0o660, groupID: configuration.socketGroupID)
        let listener: SeqPacketListener
        do {
            listener = try SeqPacketListener(path: configuration.socketPath, access: access)
        } catch {
            throw Self.socketError(configuration.socketPath, error)
        }
        self.listener = listener
        vhostListeners = try Self.openVhostUserListeners(configuration, models: models, access: access)
        try watchVhostUserListeners()
        pendingSCMI.reserveCapacity(64)
        try Self.make("epoll registration") { () throws(Errno) in
            try epoll.add(listener.descriptor, events: .readable, token: Self.listenerToken)
            try epoll.add(signals.descriptor, events: .readable, token: Self.signalToken)
            try epoll.add(timer.descriptor, events: .readable, token: Self.timerToken)
        }
        let now = MonotonicClock.nowNanoseconds()
        if frequency.isLive { nextFrequencyRefresh = now + UInt64(configuration.frequencyRefreshMilliseconds) * 1_000_000 }
        if configuration.metricsPath != nil { nextMetrics = now }
        locks.announce(.serving)
        logger.info("listening", metadata: [
            "socket": "\(configuration.socketPath)", "profiles": "\(models.keys.sorted().joined(separator: ","))",
            "cpufreq": "\(frequency.isLive ? "live" : "nominal")",
        ])
    }

    /// The socket could not be bound: a listener that holds no lock (an
    /// older vcpufreq, or a lock file someone removed) is named with its pid.
    /// `what` names the socket ("socket", "vhost-user socket"), `flag` the
    /// option that gives another path, `occupant` what a probe finds there.
    static func socketError(
        _ path: String, _ error: Errno, what: String = "socket", flag: String = "--socket",
        occupant: UnixSocketOccupant? = nil
    ) -> ServerError {
        switch (error, occupant ?? SeqPacketListener.occupant(of: path)) {
        case (.addressInUse, .live(let pid)):
            return ServerError(
                "cannot use \(what) \(path): a daemon (\(pid.map { "pid \($0)" } ?? "pid unknown")) is listening on it "
                    + "without holding \(path).lock; stop it first, or give this one its own \(flag)")
        case (_, .unknown(let probe)) where probe == error:
            return ServerError("cannot use \(what) \(path): cannot tell whether a daemon listens on it: \(error)")
        default:
            return ServerError("cannot create \(what) \(path): \(error)")
        }
    }

    private static func make<T>(_ what: String, _ body: () throws(Errno) -> T) throws -> T {
        do { return try body() } catch { throw ServerError("cannot create \(what): \(error)") }
    }

    /// The latency hint a VM gets: its profile's choice when the host can
    /// express it, else the plan's fallback.
    static func latencyHint(wanted: LatencyHintKind, plan: ActuationPlan) -> LatencyHintKind {
        switch (wanted, plan.latency) {
        case (.none, _): return .none
        case (.slice, .slice), (.nice, .nice), (.nice, .slice): return wanted
        case (.slice, .nice): return .nice
        case (_, .none): return .none
        }
    }

    // MARK: Loop

    /// Serves until SIGTERM or SIGINT, then restores every thread and returns.
    /// A failing epoll_wait (never expected: it only fails on a bad
    /// descriptor) also restores every thread before the error is thrown.
    public func run() throws {
        defer { shutdown() }
        // After everything else is up: a scheduler that fails leaves a working daemon.
        if let exit = scheduler.start(plan: plan) {
            do {
                try epoll.add(exit, events: .readable, token: Self.schedulerToken)
                schedulerExit = exit
            } catch {
                logger.error("cannot watch the scheduler's exit; it is checked at each STATUS", metadata: ["error": "\(error)"])
            }
        }
        let busyPoll = UInt64(max(configuration.busyPollMicroseconds, 0)) * 1000
        // While requests flow (busy poll on): poll epoll without sleeping until then.
        var spinUntil: UInt64 = 0
        while !stopping {
            armTimer()
            let spinning = spinUntil != 0 && MonotonicClock.nowNanoseconds() < spinUntil
            let count: Int
            do {
                count = try epoll.wait(into: ready, timeoutMilliseconds: spinning || !pendingSCMI.isEmpty ? 0 : -1)
            } catch .interrupted {
                continue
            } catch {
                throw ServerError("epoll_wait failed: \(error)")
            }
            let now = MonotonicClock.nowNanoseconds()
            var requests = false
            if count > 0 { wakeups.total &+= 1 }
            for index in 0..<count {
                let event = ready[index]
                if dispatch(token: event.token, events: event.events, now: now) { requests = true }
            }
            servePendingSCMI(now: now)
            if busyPoll > 0 {
                if requests { spinUntil = now + busyPoll } else if !spinning { spinUntil = 0 }
            }
            runTimers(now: MonotonicClock.nowNanoseconds())
        }
    }

    /// Handles one ready descriptor; true when it carried guest requests (a
    /// doorbell or a VMM's messages), which keeps a busy-polling daemon awake.
    @discardableResult
    private func dispatch(token: UInt64, events: EpollEvents, now: UInt64) -> Bool {
        switch token & (0xFF << 56) {
        case Self.doorbellKind:
            wakeups.doorbells &+= 1
            let vmID = UInt32(truncatingIfNeeded: (token >> 16) & 0xFFFF_FFFF)
            let slot = Int(token & 0xFFFF)
            sessions[vmID]?.doorbellRang(slot: slot, now: now)
            return true
        case Self.connectionKind:
            wakeups.connections &+= 1
            let id = UInt32(truncatingIfNeeded: token)
            guard let connection = connections[id] else { return false }
            if events.contains(.writable) { flush(connection) }
            if connections[id] != nil, !events.intersection([.readable, .hangUp, .error]).isEmpty {
                receive(connection, now: now)
            }
            return true
        case Self.vhostListenerKind, Self.vhostConnectionKind, Self.vhostKickKind:
            return dispatchVhostUser(token: token, now: now)
        default:
            switch token {
            case Self.listenerToken:
                wakeups.other &+= 1
                acceptConnections(now: now)
            case Self.signalToken:
                wakeups.other &+= 1
                handleSignals()
            case Self.schedulerToken:
                wakeups.other &+= 1
                refreshScheduler()
            case Self.timerToken:
                wakeups.timer &+= 1
                // One-shot: it is disarmed now, whatever deadline it was for.
                _ = try? timer.expirations()
                armedDeadline = nil
            default: break
            }
            return false
        }
    }

    /// The scheduler's exit descriptor fired, or a STATUS asks: if the
    /// kernel ejected it, stop watching, then let its descriptors go.
    func refreshScheduler() {
        guard scheduler.requested, scheduler.refresh(plan: plan) else { return }
        if let exit = schedulerExit {
            try? epoll.remove(exit)
            schedulerExit = nil
        }
        scheduler.stop()
    }

    private func handleSignals() {
        // Say "stopping" before the signal is read: until then a daemon
        // starting beside this one sees it pending, afterwards in the lock
        // files, so it waits for this one instead of refusing.
        if signals.isPending(.terminate) || signals.isPending(.interrupt) { locks.announce(.stopping) }
        while let signal = try? signals.next() {
            switch signal {
            case .terminate, .interrupt:
                logger.notice("stopping", metadata: ["signal": "\(signal)"])
                stopping = true
            default:
                logger.info("signal ignored", metadata: ["signal": "\(signal)"])
            }
        }
    }

    /// Runs everything due: each VM's policy timers and polls, the host
    /// frequency refresh, the metrics file.
    func runTimers(now: UInt64) {
        for session in sessions.values {
            if let due = session.nextDeadline, due <= now { session.advance(now: now) }
        }
        for device in scmiDevices.values {
            if let due = device.nextThreadScan, due <= now { scanThreads(device, now: now) }
        }
        if let due = nextFrequencyRefresh, due <= now {
            if frequency.refresh() {
                for session in sessions.values {
                    session.hostFrequenciesChanged(frequency.clusterKHz, host: configuration.topology.host)
                }
            }
            nextFrequencyRefresh = now + UInt64(configuration.frequencyRefreshMilliseconds) * 1_000_000
        }
        if let due = nextMetrics, due <= now {
            writeMetrics()
            nextMetrics = now + UInt64(configuration.metricsIntervalMilliseconds) * 1_000_000
        }
        if let due = acceptPausedUntil, due <= now, let listener {
            acceptPausedUntil = nil
            do {
                try epoll.add(listener.descriptor, events: .readable, token: Self.listenerToken)
            } catch {
                logger.error("cannot watch the listening socket again", metadata: ["error": "\(error)"])
                acceptPausedUntil = now + Self.acceptPauseNanoseconds
            }
        }
    }

    /// Arms the timerfd for the earliest deadline (only when it moved).
    private func armTimer() {
        var earliest = nextFrequencyRefresh
        func consider(_ deadline: UInt64?) {
            guard let deadline else { return }
            earliest = earliest.map { min($0, deadline) } ?? deadline
        }
        consider(nextMetrics)
        consider(acceptPausedUntil)
        for session in sessions.values { consider(session.nextDeadline) }
        for device in scmiDevices.values { consider(device.nextThreadScan) }
        guard earliest != armedDeadline else { return }
        armedDeadline = earliest
        do {
            if let earliest { try timer.arm(atNanoseconds: earliest) } else { try timer.disarm() }
        } catch {
            logger.error("cannot arm timer", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Shutdown

    /// Stops accepting (the socket file goes), closes every connection
    /// (each VM detached, its threads restored), writes the metrics once more.
    private func shutdown() {
        locks.announce(.stopping)
        if let listener {
            try? epoll.remove(listener.descriptor)
            self.listener = nil
        }
        for connection in connections.values.sorted(by: { $0.id < $1.id }) {
            close(connection, reason: "daemon stopping")
        }
        for device in scmiDevices.values.sorted(by: { $0.id < $1.id }) { closeSCMI(device, failure: nil) }
        for entry in vhostListeners { try? epoll.remove(entry.listener.descriptor) }
        vhostListeners = []
        writeMetrics(waiting: true)
        if let exit = schedulerExit {
            try? epoll.remove(exit)
            schedulerExit = nil
        }
        scheduler.stop()
        // Last, once every thread is back: the pins, then the locks. A
        // daemon waiting for this one starts from here.
        bpf.finish()
        locks.release()
        logger.notice("stopped; every thread restored")
    }
}

/// A start-up failure, described for the operator.
public struct ServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
