import Foundation
import SystemPackage
import VCPUFreqBPF
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

extension Server {
    /// One decoded client message. Sequence rules are in docs/protocol.md.
    func handle(_ message: ClientMessage, header: MessageHeader, on connection: Connection, now: UInt64) {
        let id = header.id
        func violation(_ code: ErrorCode, _ text: String) {
            fail(connection, id: id, type: header.type, ProtocolViolation(code, text))
        }
        switch (message, connection.state) {
        case (_, .closed):
            return  // the connection was closed while its queue was read
        case (.hello(let hello), .awaitingHello):
            guard hello.minimumVersion <= Wire.version, hello.maximumVersion >= Wire.version else {
                return violation(.unsupportedVersion, "daemon speaks version \(Wire.version); client offers \(hello.minimumVersion)...\(hello.maximumVersion)")
            }
            connection.clientName = hello.clientName
            connection.state = .ready
            var granted = hello.features & SharedPageABI.Feature.all.rawValue
            if bpf.offersPages { granted |= hello.features & ProtocolFeature.bpfMapPage }
            connection.grantedFeatures = granted
            DaemonMessage.helloOK(.init(
                version: Wire.version, features: granted, maximumVCPUs: UInt32(clamping: configuration.maximumVCPUs),
                daemonVersion: "vcpufreq \(Self.version)")).encode(id: id, into: &connection.writer)
            send(connection)
        case (.hello, _):
            violation(.invalidState, "HELLO was already sent")
        case (_, .awaitingHello):
            violation(.invalidState, "HELLO must be the first message")

        case (.attach(let attach), .ready):
            switch attachVM(attach, connection: connection, now: now) {
            case .success(let session):
                connection.state = .attached(session)
                DaemonMessage.attachOK(.init(
                    vmID: session.id, vcpuCount: UInt32(session.vcpuCount), baseAddress: session.model.addressMap.base,
                    profile: session.profile, actuators: actuatorSummary(for: session.model))).encode(id: id, into: &connection.writer)
                send(connection)
            case .failure(let error):
                fail(connection, id: id, type: header.type, error)
            }
        case (.attach, .attached):
            violation(.invalidState, "a VM is already attached on this connection")

        case (.detach, .attached(let session)):
            let restored = detach(session)
            connection.state = .ready
            DaemonMessage.detachOK(restoredThreads: UInt32(restored)).encode(id: id, into: &connection.writer)
            send(connection)

        case (.read(let read), .attached(let session)):
            let result = session.access(
                GuestAccess(vcpu: Int(read.vcpu), offset: read.offset, width: Int(read.width), value: nil), now: now)
            DaemonMessage.readOK(value: result.value, invalid: result.invalid.map { UInt32($0.rawValue) + 1 } ?? 0)
                .encode(id: id, into: &connection.writer)
            send(connection)
        case (.write(let write), .attached(let session)):
            let result = session.access(
                GuestAccess(vcpu: Int(write.vcpu), offset: write.offset, width: Int(write.width), value: write.value), now: now)
            if write.sync {
                DaemonMessage.writeOK(invalid: result.invalid.map { UInt32($0.rawValue) + 1 } ?? 0).encode(id: id, into: &connection.writer)
                send(connection)
            }
        case (.mapShared(let request), .attached(let session)):
            mapShared(request, session: session, connection: connection, id: id, type: header.type, now: now)

        case (.status(let request), _):
            sendStatus(allVMs: request.flags & ClientMessage.StatusRequest.allVMs != 0, connection: connection, id: id)

        case (.detach, _), (.read, _), (.write, _), (.mapShared, _):
            violation(.invalidState, "\(message.type) needs an attached VM")
        }
    }

    /// The daemon's actuator plan, `dry-run ` first in a dry run.
    var actuatorSummary: String {
        (configuration.dryRun ? "dry-run " : "") + plan.description
    }

    /// What acts on one VM's threads: the plan's clamp, the latency hint its
    /// profile gets on this host (slice, nice or none) and whether its
    /// threads are pinned — `clamp=none latency=nice affinity=off`.
    func actuatorSummary(for model: VMModel) -> String {
        let latency: String
        switch (plan.latency, model.policy.latencyHint) {
        case (.none, _), (_, .none): latency = "none"
        case (_, .slice): latency = "slice"
        case (_, .nice): latency = "nice"
        }
        let affinity = plan.affinity && model.pin ? "on" : "off"
        return (configuration.dryRun ? "dry-run " : "") + "clamp=\(plan.clamp.rawValue) latency=\(latency) affinity=\(affinity)"
    }

    // MARK: Attach

    private func attachVM(_ attach: ClientMessage.Attach, connection: Connection, now: UInt64) -> Result<VMSession, ProtocolViolation> {
        let topology = configuration.topology
        guard let profile = topology.profile(named: attach.profile.isEmpty ? nil : attach.profile), var model = models[profile.name] else {
            let known = topology.vms.map(\.name).joined(separator: ", ")
            return .failure(ProtocolViolation(.unknownProfile, "no VM profile \"\(attach.profile)\" (profiles: \(known))"))
        }
        guard profile.vcpuCount == attach.threadIDs.count else {
            return .failure(ProtocolViolation(.unknownProfile, "profile \"\(profile.name)\" has \(profile.vcpuCount) vCPUs, not \(attach.threadIDs.count)"))
        }
        guard !sessions.values.contains(where: { $0.name == attach.vmName }) else {
            return .failure(ProtocolViolation(.duplicateVM, "a VM named \"\(attach.vmName)\" is already attached"))
        }
        guard sessions.count < configuration.maximumVMs,
            attachedVCPUs + attach.threadIDs.count <= configuration.maximumVCPUs
        else {
            return .failure(ProtocolViolation(.resources, "the daemon serves at most \(configuration.maximumVMs) VMs and \(configuration.maximumVCPUs) vCPUs"))
        }
        // The pid SO_PEERCRED gave must still be the process that connected.
        guard let started = connection.peerStartTime,
            procfs.startTime(ofThread: connection.peer.pid, inProcess: connection.peer.pid) == started
        else {
            return .failure(ProtocolViolation(.foreignThread, "process \(connection.peer.pid) that connected has exited"))
        }
        var seen = Set<Int32>()
        for tid in attach.threadIDs {
            guard seen.insert(tid).inserted else {
                return .failure(ProtocolViolation(.foreignThread, "TID \(tid) is listed twice"))
            }
            guard procfs.isThread(tid, ofProcess: connection.peer.pid) else {
                return .failure(ProtocolViolation(.foreignThread, "TID \(tid) is not a thread of process \(connection.peer.pid)"))
            }
            guard !attachedTIDs.contains(tid) else {
                return .failure(ProtocolViolation(.foreignThread, "TID \(tid) already belongs to an attached VM"))
            }
        }
        if !configuration.pinThreads { model.pin = false }
        var threads: [AttachedThread] = []
        threads.reserveCapacity(attach.threadIDs.count)
        for (vcpu, tid) in attach.threadIDs.enumerated() {
            do {
                threads.append(try controller.attach(
                    tid: tid, pid: connection.peer.pid, vm: attach.vmName, vcpu: vcpu,
                    domain: Int(model.vcpus[vcpu].performanceDomain)))
            } catch {
                for thread in threads { try? controller.restore(thread) }
                let code: ErrorCode = error.threadGone ? .foreignThread : .resources
                return .failure(ProtocolViolation(code, "cannot take thread \(tid): \(error)"))
            }
        }
        // VM ids name doorbell epoll tokens: skip live ones after a wrap.
        while nextVMID == 0 || sessions[nextVMID] != nil { nextVMID &+= 1 }
        let id = nextVMID
        nextVMID &+= 1
        let session = VMSession(
            id: id, name: attach.vmName, profile: profile.name, model: model, host: topology.host, peer: connection.peer,
            threads: threads, controller: controller,
            logger: logger)
        sessions[id] = session
        attachedTIDs.formUnion(attach.threadIDs)
        bpf.track(threads)
        attachedVCPUs += attach.threadIDs.count
        session.hostFrequenciesChanged(frequency.clusterKHz, host: topology.host)
        session.applyChanges(now: now)  // pins threads, initial hints
        logger.info("vm attached", metadata: [
            "vm": "\(attach.vmName)", "profile": "\(profile.name)", "vcpus": "\(attach.threadIDs.count)",
            "pid": "\(connection.peer.pid)", "client": "\(connection.clientName)",
        ])
        return .success(session)
    }

    // MARK: Shared memory

    private func mapShared(
        _ request: ClientMessage.MapSharedRequest, session: VMSession, connection: Connection, id: UInt32, type: UInt16,
        now: UInt64
    ) {
        guard session.shared == nil else {
            return fail(connection, id: id, type: type, ProtocolViolation(.invalidState, "MAP_SHARED was already answered"))
        }
        // A BPF-map page for a VMM that asked for one at HELLO, when the
        // programs run and a page map can be made; a memfd otherwise.
        var bpfPage: (map: BPFPageMap, index: UInt32)?
        if connection.grantedFeatures & ProtocolFeature.bpfMapPage != 0 {
            switch bpf.makePage(for: session) {
            case .success(let page): bpfPage = page
            case .failure(let refusal):
                session.sharedPageNote = "\(refusal)"
                logger.notice("memfd shared page instead of a BPF map", metadata: ["vm": "\(session.name)", "reason": "\(refusal)"])
            }
        } else {
            session.sharedPageNote = bpf.offersPages
                ? "the VMM did not ask for a BPF-map page (HELLO feature 0x10000)" : bpf.pageCapability.reason
        }
        let region: SharedRegion
        do {
            region = try session.mapShared(
                mirror: request.flags & ClientMessage.MapSharedRequest.mirror != 0,
                doorbells: request.flags & ClientMessage.MapSharedRequest.doorbells != 0, generation: generation, now: now,
                bpfPage: bpfPage)
        } catch {
            if let bpfPage { bpf.releaseIndex(bpfPage.index) }
            return fail(connection, id: id, type: type, ProtocolViolation(.resources, "cannot create shared memory: \(error)"))
        }
        bpf.install(session, region: region)
        for (slot, bell) in region.doorbells.enumerated() {
            let token = Self.doorbellKind | UInt64(session.id) << 16 | UInt64(slot)
            do {
                // Edge-triggered: a kick costs the daemon no read() of the eventfd.
                try epoll.add(bell.descriptor, events: [.readable, .edgeTriggered], token: token)
            } catch {
                return fail(connection, id: id, type: type, ProtocolViolation(.resources, "cannot watch doorbell \(slot): \(error)"))
            }
        }
        DaemonMessage.sharedOK(region.layout(vcpuCount: session.vcpuCount)).encode(id: id, into: &connection.writer)
        guard send(connection, descriptors: region.descriptors) else { return }
        var first = 0
        while first < region.doorbells.count {
            let count = min(Wire.doorbellsPerMessage, region.doorbells.count - first)
            DaemonMessage.doorbells(first: UInt32(first), count: UInt32(count)).encode(id: id, into: &connection.writer)
            guard send(connection, descriptors: region.doorbells[first..<(first + count)].map(\.descriptor)) else { return }
            first += count
        }
    }

    // MARK: Status

    private func sendStatus(allVMs: Bool, connection: Connection, id: UInt32) {
        let selected: [VMSession]
        if allVMs {
            selected = sessions.values.sorted { $0.id < $1.id }
        } else {
            selected = connection.session.map { [$0] } ?? []
        }
        let json = Self.statusJSON(statusDocument(for: selected))
        let chunkSize = Wire.maximumDaemonMessage - Wire.headerSize - 8
        let chunks = max(1, (json.count + chunkSize - 1) / chunkSize)
        for chunk in 0..<chunks {
            let start = chunk * chunkSize
            let piece = Array(json[start..<min(json.count, start + chunkSize)])
            DaemonMessage.statusOK(chunk: UInt32(chunk), chunks: UInt32(chunks), json: piece).encode(id: id, into: &connection.writer)
            guard send(connection) else { return }
        }
    }

    /// The document as STATUS_OK carries it: snake_case keys, sorted.
    static func statusJSON(_ document: StatusDocument) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(document)).map { Array($0) } ?? Array("{}".utf8)
    }
}
