import Logging
import SystemPackage
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol
import VCPUFreqVhostUser

/// One `--vhost-user-scmi` socket: where one VM's front-end connects.
final class VhostUserSCMIListener {
    let endpoint: VhostUserSCMIEndpoint
    let listener: StreamListener
    /// The device of the connected front-end (one at a time).
    var deviceID: UInt32?
    var connections: UInt64 = 0
    var lastFailure: String?

    init(endpoint: VhostUserSCMIEndpoint, listener: StreamListener) {
        self.endpoint = endpoint
        self.listener = listener
    }
}

/// SCMI over vhost-user in the daemon's loop: the listening sockets, the
/// front-end connections, their kick eventfds and the search for the vCPU
/// threads of an unmodified VMM. A front-end that breaks the protocol or a
/// ring loses its connection (its VM's threads restored); every other VM
/// goes on.
extension Server {
    static let vhostListenerKind: UInt64 = 6 << 56
    static let vhostConnectionKind: UInt64 = 7 << 56
    static let vhostKickKind: UInt64 = 8 << 56
    /// vhost-user messages handled per wake-up of one connection.
    static let vhostMessagesPerWakeup = 64
    /// How often missing vCPU threads are looked for: soon after connect
    /// (QEMU and crosvm may start vCPU threads after their devices), then
    /// rarely (a VM with fewer vCPUs than its profile).
    static let threadScanFastNanoseconds: UInt64 = 100_000_000
    static let threadScanSlowNanoseconds: UInt64 = 1_000_000_000
    static let threadScanFastPeriod: UInt64 = 5_000_000_000

    /// Opens every `--vhost-user-scmi` socket (called from init).
    static func openVhostUserListeners(
        _ configuration: ServerConfiguration, models: [String: VMModel], access: SeqPacketListener.Access
    ) throws -> [VhostUserSCMIListener] {
        var names = Set<String>(), paths = Set<String>()
        var listeners: [VhostUserSCMIListener] = []
        for endpoint in configuration.vhostUserSCMI {
            guard let model = models[endpoint.profile] else {
                let known = models.keys.sorted().joined(separator: ", ")
                throw ServerError("--vhost-user-scmi \(endpoint.path): no VM profile \"\(endpoint.profile)\" (profiles: \(known))")
            }
            guard names.insert(endpoint.vmName).inserted, paths.insert(endpoint.path).inserted else {
                throw ServerError("--vhost-user-scmi \(endpoint.path): each VM needs its own socket and name (name=\(endpoint.vmName))")
            }
            if let tids = endpoint.threadIDs, tids.count != model.vcpuCount {
                throw ServerError("--vhost-user-scmi \(endpoint.path): tids lists \(tids.count) threads; profile \"\(endpoint.profile)\" has \(model.vcpuCount) vCPUs")
            }
            do {
                listeners.append(VhostUserSCMIListener(endpoint: endpoint, listener: try StreamListener(path: endpoint.path, access: access)))
            } catch {
                throw socketError(
                    endpoint.path, error, what: "vhost-user socket", flag: "--vhost-user-scmi", occupant: StreamListener.occupant(of: endpoint.path))
            }
        }
        return listeners
    }

    func watchVhostUserListeners() throws {
        for (index, entry) in vhostListeners.enumerated() {
            do { try epoll.add(entry.listener.descriptor, events: .readable, token: Self.vhostListenerKind | UInt64(index)) } catch {
                throw ServerError("cannot watch vhost-user socket \(entry.endpoint.path): \(error)")
            }
        }
    }

    /// Dispatches a vhost-user token; true when it carried guest requests.
    func dispatchVhostUser(token: UInt64, now: UInt64) -> Bool {
        switch token & (0xFF << 56) {
        case Self.vhostListenerKind:
            acceptVhostUser(listener: Int(token & 0xFFFF), now: now)
            return false
        case Self.vhostConnectionKind:
            guard let device = scmiDevices[UInt32(truncatingIfNeeded: token)] else { return false }
            let ending = device.transport.receive(limit: Self.vhostMessagesPerWakeup) { queue, old, new in
                if let old { try? epoll.remove(old) }
                if let new {
                    let kick = Self.vhostKickKind | UInt64(device.id) << 16 | UInt64(queue)
                    do { try epoll.add(new, events: [.readable, .edgeTriggered], token: kick) } catch {
                        logger.error("cannot watch a kick eventfd", metadata: ["vm": "\(device.session.name)", "error": "\(error)"])
                    }
                }
            }
            if case .closed(let reason) = ending {
                closeSCMI(device, failure: reason)
                return true
            }
            serve(device, now: now)
            return true
        case Self.vhostKickKind:
            guard let device = scmiDevices[UInt32(truncatingIfNeeded: (token >> 16) & 0xFFFF_FFFF)] else { return false }
            device.kicked()
            serve(device, now: now)
            return true
        default:
            return false
        }
    }

    func serve(_ device: SCMIDevice, now: UInt64) {
        do throws(VirtqueueError) {
            if try device.serveCommands(now: now) { pendingSCMI.insert(device.id) } else { pendingSCMI.remove(device.id) }
        } catch {
            closeSCMI(device, failure: "broken virtqueue: \(error)")
            return
        }
        if device.session.threadsChanged, device.nextThreadScan == nil { device.nextThreadScan = now }
    }

    /// Serves the devices that had more chains than one wake-up takes.
    func servePendingSCMI(now: UInt64) {
        guard !pendingSCMI.isEmpty else { return }
        for id in Array(pendingSCMI) {
            if let device = scmiDevices[id] { serve(device, now: now) } else { pendingSCMI.remove(id) }
        }
    }

    // MARK: Accept

    private func acceptVhostUser(listener index: Int, now: UInt64) {
        guard vhostListeners.indices.contains(index) else { return }
        let entry = vhostListeners[index]
        while true {
            let socket: StreamConnection
            do {
                guard let accepted = try entry.listener.accept() else { return }
                socket = accepted
            } catch .connectionAbort, .interrupted {
                continue
            } catch {
                logger.warning("vhost-user accept failed", metadata: ["socket": "\(entry.endpoint.path)", "error": "\(error)"])
                return
            }
            entry.connections &+= 1
            if let refusal = attachSCMI(socket, listener: index, now: now) {
                entry.lastFailure = refusal
                logger.warning("vhost-user front-end refused", metadata: ["socket": "\(entry.endpoint.path)", "reason": "\(refusal)"])
            }
        }
    }

    /// Takes a front-end connection: checks the peer, finds its vCPU
    /// threads, creates the VM's session and device. Returns why it was
    /// refused (the socket is then closed), nil when attached.
    private func attachSCMI(_ socket: StreamConnection, listener index: Int, now: UInt64) -> String? {
        let entry = vhostListeners[index]
        let endpoint = entry.endpoint
        let peer: PeerCredentials
        do { peer = try socket.peerCredentials() } catch { return "no peer credentials: \(error)" }
        guard peer.uid == 0 || peer.uid == daemonUID || configuration.allowedUIDs.contains(peer.uid) else {
            return "uid \(peer.uid) may not use this daemon"
        }
        guard entry.deviceID == nil else { return "a front-end is already connected to this socket" }
        guard var model = models[endpoint.profile] else { return "no profile \(endpoint.profile)" }
        guard !sessions.values.contains(where: { $0.name == endpoint.vmName }) else {
            return "a VM named \"\(endpoint.vmName)\" is already attached"
        }
        guard sessions.count < configuration.maximumVMs, attachedVCPUs + model.vcpuCount <= configuration.maximumVCPUs else {
            return "the daemon serves at most \(configuration.maximumVMs) VMs and \(configuration.maximumVCPUs) vCPUs"
        }
        if let tids = endpoint.threadIDs {
            for tid in tids where !procfs.isThread(tid, ofProcess: peer.pid) {
                return "TID \(tid) of tids= is not a thread of front-end process \(peer.pid)"
            }
        }
        if !configuration.pinThreads { model.pin = false }
        while nextVMID == 0 || sessions[nextVMID] != nil { nextVMID &+= 1 }
        let vmID = nextVMID
        nextVMID &+= 1
        while nextSCMIDeviceID == 0 || scmiDevices[nextSCMIDeviceID] != nil { nextSCMIDeviceID &+= 1 }
        let deviceID = nextSCMIDeviceID
        nextSCMIDeviceID &+= 1

        let session = VMSession(
            id: vmID, name: endpoint.vmName, profile: endpoint.profile, model: model, host: configuration.topology.host,
            peer: peer, threads: Array(repeating: nil, count: model.vcpuCount), controller: controller, logger: logger)
        let transport = VhostUserConnection(
            socket: socket, peer: peer, device: SCMIDevice.virtioDevice, maximumChainLength: SCMIDevice.maximumChainLength)
        let device = SCMIDevice(
            id: deviceID, endpoint: index, transport: transport, session: session, host: configuration.topology.host, now: now)
        do {
            try epoll.add(socket.descriptor, events: .readable, token: Self.vhostConnectionKind | UInt64(deviceID))
        } catch {
            return "cannot watch the connection: \(error)"
        }
        sessions[vmID] = session
        scmiDevices[deviceID] = device
        entry.deviceID = deviceID
        entry.lastFailure = nil
        attachedVCPUs += model.vcpuCount
        session.hostFrequenciesChanged(frequency.clusterKHz, host: configuration.topology.host)
        session.applyChanges(now: now)
        scanThreads(device, now: now)
        logger.info("vm attached over vhost-user", metadata: [
            "vm": "\(endpoint.vmName)", "profile": "\(endpoint.profile)", "vcpus": "\(model.vcpuCount)", "pid": "\(peer.pid)",
            "socket": "\(endpoint.path)", "threads_found": "\(model.vcpuCount - session.missingThreads.count)",
        ])
        return nil
    }

    // MARK: vCPU threads

    /// Forgets threads that exited and takes the vCPU threads that appeared:
    /// by name among the front-end's threads, or the listed TIDs. Each must
    /// be a thread of the peer process and not another VM's.
    func scanThreads(_ device: SCMIDevice, now: UInt64) {
        let session = device.session
        let pid = session.peer.pid
        session.threadsRescanned()
        for vcpu in 0..<session.vcpuCount {
            guard let thread = session.threads[vcpu] else { continue }
            let alive = procfs.startTime(ofThread: thread.target.tid, inProcess: pid) == thread.startTime
            guard !alive, let gone = session.dropThread(vcpu: vcpu) else { continue }
            attachedTIDs.remove(gone.target.tid)
            bpf.untrack([gone])
            logger.info("vCPU thread gone", metadata: ["vm": "\(session.name)", "vcpu": "\(vcpu)", "tid": "\(gone.target.tid)"])
        }
        let missing = session.missingThreads
        if !missing.isEmpty {
            let found: [Int: Int32]
            if let tids = vhostListeners[device.endpoint].endpoint.threadIDs {
                found = Dictionary(uniqueKeysWithValues: tids.enumerated().map { ($0.offset, $0.element) })
            } else {
                found = VCPUThreadName.vcpuThreads(procfs.threads(ofProcess: pid), vcpuCount: session.vcpuCount)
            }
            for vcpu in missing {
                guard let tid = found[vcpu], !attachedTIDs.contains(tid), procfs.isThread(tid, ofProcess: pid) else { continue }
                do {
                    let thread = try controller.attach(
                        tid: tid, pid: pid, vm: session.name, vcpu: vcpu, domain: Int(session.model.vcpus[vcpu].performanceDomain))
                    attachedTIDs.insert(tid)
                    bpf.track([thread])
                    session.adopt(thread, vcpu: vcpu)
                    logger.info("vCPU thread found", metadata: ["vm": "\(session.name)", "vcpu": "\(vcpu)", "tid": "\(tid)"])
                } catch {
                    logger.warning("cannot take vCPU thread", metadata: ["vm": "\(session.name)", "tid": "\(tid)", "error": "\(error)"])
                }
            }
        }
        if session.missingThreads.isEmpty {
            device.nextThreadScan = nil
        } else {
            let fast = now &- device.attachedAt < Self.threadScanFastPeriod
            device.nextThreadScan = now + (fast ? Self.threadScanFastNanoseconds : Self.threadScanSlowNanoseconds)
        }
    }

    // MARK: Close

    /// Ends a front-end connection: its kicks and socket leave the epoll
    /// set, its VM is detached (threads restored). `failure` says why the
    /// daemon ended it (nil: the front-end left).
    func closeSCMI(_ device: SCMIDevice, failure: String?) {
        guard scmiDevices.removeValue(forKey: device.id) != nil else { return }
        pendingSCMI.remove(device.id)
        for case let kick? in device.transport.kicks { try? epoll.remove(kick.rawDescriptor) }
        try? epoll.remove(device.transport.socket.descriptor)
        let listener = vhostListeners[device.endpoint]
        listener.deviceID = nil
        if let failure { listener.lastFailure = failure }
        detach(device.session)
        if let failure {
            logger.warning("vhost-user device failed; connection closed", metadata: [
                "vm": "\(device.session.name)", "socket": "\(listener.endpoint.path)", "error": "\(failure)",
            ])
        } else {
            logger.info("vhost-user front-end disconnected", metadata: ["vm": "\(device.session.name)"])
        }
    }

    /// STATUS of the sockets.
    var vhostUserSocketStatus: [StatusDocument.VhostUserSocket]? {
        guard !vhostListeners.isEmpty else { return nil }
        return vhostListeners.map {
            StatusDocument.VhostUserSocket(
                path: $0.endpoint.path, profile: $0.endpoint.profile, vmName: $0.endpoint.vmName, connected: $0.deviceID != nil,
                connections: $0.connections, lastFailure: $0.lastFailure)
        }
    }

    func scmiStatus(of session: VMSession) -> StatusDocument.SCMIDevice? {
        guard let device = scmiDevices.values.first(where: { $0.session === session }) else { return nil }
        return device.status(socket: vhostListeners[device.endpoint].endpoint.path)
    }
}
