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
    let epoll: Epoll
    private var listener: SeqPacketListener?
    let signals: SignalFD
    let timer: TimerFD
    let capabilities: HostCapabilities
    let plan: ActuationPlan
    let controller: ThreadController
    let journal: RestoreJournal?
    let procfs = ProcFS()
    let frequency: FrequencyMonitor
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
    private(set) var recoveredThreads = 0
    /// The deadline the timerfd is armed for; nil once it fired (or never armed).
    private var armedDeadline: UInt64?
    private var nextFrequencyRefresh: UInt64?
    private var nextMetrics: UInt64?
    /// accept() failed for lack of a resource (EMFILE, ENFILE, ENOBUFS):
    /// the listener is out of the epoll set until then, so a level-triggered
    /// listener with a pending connection does not spin the loop.
    private var acceptPausedUntil: UInt64?
    private var stopping = false
    private let ready = EpollReadyBuffer(capacity: 64)

    // Epoll tokens: the top byte says what, the rest which.
    static let listenerToken: UInt64 = 1
    static let signalToken: UInt64 = 2
    static let timerToken: UInt64 = 3
    static let connectionKind: UInt64 = 4 << 56
    static let doorbellKind: UInt64 = 5 << 56

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

        capabilities = HostCapabilities.detect()
        plan = capabilities.plan(
            clamp: configuration.clampPreference, latency: configuration.latencyPreference,
            affinity: configuration.pinThreads)
        for (facet, capability) in [
            ("uclamp", capabilities.uclamp), ("cgroup_uclamp", capabilities.cgroupUclamp),
            ("eevdf_slice", capabilities.eevdfSlice), ("nice", capabilities.nice), ("affinity", capabilities.affinity),
            ("bpf_map", capabilities.bpfMap),
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
        controller = plan.makeController(
            cgroupParent: configuration.cgroupParent, recorder: recorder, applies: !configuration.dryRun, journal: journal)

        var models: [String: VMModel] = [:]
        for profile in configuration.topology.vms {
            var model = try configuration.topology.model(forVM: profile.name)
            model.policy.latencyHint = Self.latencyHint(wanted: model.policy.latencyHint, plan: plan)
            models[profile.name] = model
        }
        self.models = models
        frequency = FrequencyMonitor(host: configuration.topology.host, sysfsRoot: configuration.sysfsRoot)

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
        let listener = try Self.make("socket \(configuration.socketPath)") { () throws(Errno) in
            try SeqPacketListener(path: configuration.socketPath, access: access)
        }
        self.listener = listener
        try Self.make("epoll registration") { () throws(Errno) in
            try epoll.add(listener.descriptor, events: .readable, token: Self.listenerToken)
            try epoll.add(signals.descriptor, events: .readable, token: Self.signalToken)
            try epoll.add(timer.descriptor, events: .readable, token: Self.timerToken)
        }
        let now = MonotonicClock.nowNanoseconds()
        if frequency.isLive { nextFrequencyRefresh = now + UInt64(configuration.frequencyRefreshMilliseconds) * 1_000_000 }
        if configuration.metricsPath != nil { nextMetrics = now }
        logger.info("listening", metadata: [
            "socket": "\(configuration.socketPath)", "profiles": "\(models.keys.sorted().joined(separator: ","))",
            "cpufreq": "\(frequency.isLive ? "live" : "nominal")",
        ])
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
        while !stopping {
            armTimer()
            let count: Int
            do {
                count = try epoll.wait(into: ready, timeoutMilliseconds: -1)
            } catch .interrupted {
                continue
            } catch {
                throw ServerError("epoll_wait failed: \(error)")
            }
            let now = MonotonicClock.nowNanoseconds()
            for index in 0..<count {
                let event = ready[index]
                dispatch(token: event.token, events: event.events, now: now)
            }
            runTimers(now: MonotonicClock.nowNanoseconds())
        }
    }

    private func dispatch(token: UInt64, events: EpollEvents, now: UInt64) {
        switch token & (0xFF << 56) {
        case Self.doorbellKind:
            let vmID = UInt32(truncatingIfNeeded: (token >> 16) & 0xFFFF_FFFF)
            let slot = Int(token & 0xFFFF)
            sessions[vmID]?.doorbellRang(slot: slot, now: now)
        case Self.connectionKind:
            let id = UInt32(truncatingIfNeeded: token)
            guard let connection = connections[id] else { return }
            if events.contains(.writable) { flush(connection) }
            if connections[id] != nil, !events.intersection([.readable, .hangUp, .error]).isEmpty {
                receive(connection, now: now)
            }
        default:
            switch token {
            case Self.listenerToken: acceptConnections(now: now)
            case Self.signalToken: handleSignals()
            case Self.timerToken:
                // One-shot: it is disarmed now, whatever deadline it was for.
                _ = try? timer.expirations()
                armedDeadline = nil
            default: break
            }
        }
    }

    private func handleSignals() {
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
    private func runTimers(now: UInt64) {
        for session in sessions.values {
            if let due = session.nextDeadline, due <= now { session.advance(now: now) }
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
        guard earliest != armedDeadline else { return }
        armedDeadline = earliest
        do {
            if let earliest { try timer.arm(atNanoseconds: earliest) } else { try timer.disarm() }
        } catch {
            logger.error("cannot arm timer", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Connections

    private func acceptConnections(now: UInt64) {
        guard let listener else { return }
        while true {
            let socket: SeqPacketConnection
            do {
                guard let accepted = try listener.accept() else { return }
                socket = accepted
            } catch .connectionAbort, .interrupted {
                continue  // the peer gave up while queued; take the next one
            } catch {
                // EMFILE and friends: the pending connection stays queued and
                // the listener readable; stop watching it for a while.
                logger.warning("accept failed; pausing", metadata: [
                    "error": "\(error)", "pause_ms": "\(Self.acceptPauseNanoseconds / 1_000_000)",
                ])
                try? epoll.remove(listener.descriptor)
                acceptPausedUntil = now + Self.acceptPauseNanoseconds
                return
            }
            let peer: PeerCredentials
            do { peer = try socket.peerCredentials() } catch {
                logger.warning("no peer credentials; refused", metadata: ["error": "\(error)"])
                continue
            }
            let id = takeConnectionID()
            let connection = Connection(
                id: id, socket: socket, peer: peer, peerStartTime: procfs.startTime(ofThread: peer.pid, inProcess: peer.pid))
            let allowed = peer.uid == 0 || peer.uid == daemonUID || configuration.allowedUIDs.contains(peer.uid)
            logger.info("connection", metadata: [
                "id": "\(id)", "pid": "\(peer.pid)", "uid": "\(peer.uid)", "gid": "\(peer.gid)", "allowed": "\(allowed)",
            ])
            guard allowed else {
                logger.warning("peer refused: uid not allowed", metadata: ["id": "\(id)", "pid": "\(peer.pid)", "uid": "\(peer.uid)"])
                refuse(connection, .permissionDenied, "uid \(peer.uid) may not use this daemon")
                continue
            }
            guard connections.count < configuration.maximumConnections else {
                logger.warning("peer refused: too many connections", metadata: [
                    "id": "\(id)", "pid": "\(peer.pid)", "limit": "\(configuration.maximumConnections)",
                ])
                refuse(connection, .resources, "the daemon serves at most \(configuration.maximumConnections) connections")
                continue
            }
            do {
                try epoll.add(socket.descriptor, events: .readable, token: Self.connectionKind | UInt64(id))
            } catch {
                logger.warning("cannot watch connection", metadata: ["error": "\(error)"])
                continue
            }
            connections[id] = connection
        }
    }

    /// A connection id no open connection has (ids name epoll tokens; after
    /// 2^32 connections the counter wraps and must skip live ones).
    private func takeConnectionID() -> UInt32 {
        while nextConnectionID == 0 || connections[nextConnectionID] != nil { nextConnectionID &+= 1 }
        defer { nextConnectionID &+= 1 }
        return nextConnectionID
    }

    /// Answers a connection that is never served with ERROR (best effort:
    /// its socket is fresh and empty) and drops it.
    private func refuse(_ connection: Connection, _ code: ErrorCode, _ message: String) {
        DaemonMessage.error(code: code, failedType: 0, message: message).encode(id: 0, into: &connection.writer)
        _ = connection.sendWriter()
        connection.discardPendingInput()
    }

    /// Reads the connection's queued messages (at most `messagesPerWakeup`).
    private func receive(_ connection: Connection, now: UInt64) {
        for _ in 0..<Self.messagesPerWakeup {
            guard connections[connection.id] != nil else { return }
            let received: ReceivedMessage
            switch receiveOne(connection) {
            case .success(let message): received = message
            case .failure(let error):
                close(connection, reason: "receive failed: \(error)")
                return
            }
            switch received {
            case .wouldBlock:
                return
            case .endOfStream:
                // recvmsg returns 0 both at the end of the stream and for an
                // empty packet. Receiving again tells them apart: after the
                // end it returns 0 again; after an empty packet the
                // connection is still open (EAGAIN, or the next message).
                switch receiveOne(connection) {
                case .success(.endOfStream), .failure:
                    close(connection, reason: "peer closed the connection")
                default:
                    fail(connection, id: 0, type: 0, ProtocolViolation(.malformed, "empty packet"))
                }
                return
            case .dataTruncated(let count, _):
                let (id, type) = connection.headerEcho(byteCount: count)
                fail(connection, id: id, type: type, ProtocolViolation(
                    .malformed, "message longer than \(Wire.maximumClientMessage) bytes"))
                return
            case .descriptorsTruncated(let count, _):
                let (id, type) = connection.headerEcho(byteCount: count)
                fail(connection, id: id, type: type, ProtocolViolation(.unexpectedDescriptors, "file descriptors sent to the daemon"))
                return
            case .message(let count, let descriptors):
                // Received descriptors are closed when `received` goes away.
                guard descriptors.isEmpty else {
                    let (id, type) = connection.headerEcho(byteCount: count)
                    fail(connection, id: id, type: type, ProtocolViolation(.unexpectedDescriptors, "file descriptors sent to the daemon"))
                    return
                }
                // The buffer is one byte larger than any client message, so
                // a packet of exactly that size is too long, not truncated.
                guard count <= Wire.maximumClientMessage else {
                    let (id, type) = connection.headerEcho(byteCount: count)
                    fail(connection, id: id, type: type, ProtocolViolation(
                        .malformed, "message longer than \(Wire.maximumClientMessage) bytes"))
                    return
                }
                let decoded = connection.receiveBuffer.withUnsafeBytes { raw in
                    Result { () throws(ProtocolViolation) in try ClientMessage.decode(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
                }
                switch decoded {
                case .success(let (header, message)):
                    handle(message, header: header, on: connection, now: now)
                case .failure(let violation):
                    let (id, type) = connection.headerEcho(byteCount: count)
                    fail(connection, id: id, type: type, violation)
                    return
                }
            }
        }
    }

    /// One nonblocking receive into the connection's buffer (one descriptor
    /// of room, so a client that sends any is seen doing it).
    private func receiveOne(_ connection: Connection) -> Result<ReceivedMessage, Errno> {
        connection.receiveBuffer.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) in try connection.socket.receive(into: buffer, maximumDescriptors: 1) }
        }
    }

    private func flush(_ connection: Connection) {
        guard connection.flush() else {
            close(connection, reason: "peer stopped reading")
            return
        }
        updateWritable(connection)
    }

    private func updateWritable(_ connection: Connection) {
        let want = !connection.outboxIsEmpty
        guard want != connection.wantsWritable else { return }
        connection.wantsWritable = want
        let events: EpollEvents = want ? [.readable, .writable] : .readable
        try? epoll.modify(connection.socket.descriptor, events: events, token: Self.connectionKind | UInt64(connection.id))
    }

    /// Sends the reply in the connection's writer; closes it when the peer is gone.
    @discardableResult
    func send(_ connection: Connection, descriptors: [FileDescriptor] = []) -> Bool {
        switch connection.sendWriter(descriptors: descriptors) {
        case .sent:
            return true
        case .queued:
            updateWritable(connection)
            return true
        case .failed(let error):
            close(connection, reason: "send failed: \(error.map { "\($0)" } ?? "peer not reading")")
            return false
        }
    }

    /// Answers a protocol violation with ERROR and closes the connection
    /// (after the error is sent), restoring its VM's threads.
    func fail(_ connection: Connection, id: UInt32, type: UInt16, _ violation: ProtocolViolation) {
        logger.warning("protocol error; closing connection", metadata: [
            "id": "\(connection.id)", "pid": "\(connection.peer.pid)", "code": "\(violation.code)", "error": "\(violation.message)",
        ])
        // Best effort: replies still queued go first, then the error; what
        // the socket cannot take now is dropped with the connection.
        _ = connection.flush()
        DaemonMessage.error(code: violation.code, failedType: type, message: violation.message).encode(id: id, into: &connection.writer)
        _ = connection.sendWriter()
        connection.discardPendingInput()
        close(connection, reason: "protocol error")
    }

    /// Closes a connection: detaches its VM (restoring every thread) first.
    /// The socket's descriptor is closed when the connection object goes
    /// away (right after the handler on the stack returns): closing it here
    /// as well would close it twice, the second time possibly a descriptor
    /// that reused its number (a new connection, a doorbell).
    func close(_ connection: Connection, reason: String) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        if let session = connection.session { detach(session) }
        connection.state = .closed
        try? epoll.remove(connection.socket.descriptor)
        logger.info("connection closed", metadata: ["id": "\(connection.id)", "reason": "\(reason)"])
    }

    /// Restores a VM's threads and forgets it.
    @discardableResult
    func detach(_ session: VMSession) -> Int {
        if let shared = session.shared {
            for bell in shared.doorbells { try? epoll.remove(bell.descriptor) }
        }
        let restored = session.restoreAll()
        sessions.removeValue(forKey: session.id)
        for thread in session.threads { attachedTIDs.remove(thread.target.tid) }
        attachedVCPUs -= session.vcpuCount
        logger.info("vm detached", metadata: ["vm": "\(session.name)", "restored": "\(restored)"])
        return restored
    }

    private func shutdown() {
        if let listener {
            try? epoll.remove(listener.descriptor)
            self.listener = nil
        }
        for connection in connections.values.sorted(by: { $0.id < $1.id }) {
            close(connection, reason: "daemon stopping")
        }
        writeMetrics()
        logger.notice("stopped; every thread restored")
    }
}

/// A start-up failure, described for the operator.
public struct ServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
