import Logging
import SystemPackage
import VCPUFreqLinux
import VCPUFreqProtocol

/// The connections: accept (peer credentials, the allow-list, the
/// connection limit), receive (bounded per wake-up, every packet checked),
/// send (queued on EAGAIN), and every way a connection ends — each of which
/// detaches its VM and restores its threads.
extension Server {
    /// Accepts every pending connection: logs the peer's credentials,
    /// refuses a uid outside the allow-list or a connection over the limit
    /// (ERROR, then dropped), watches the rest.
    func acceptConnections(now: UInt64) {
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
    func receive(_ connection: Connection, now: UInt64) {
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

    func flush(_ connection: Connection) {
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
        bpf.release(session)
        let restored = session.restoreAll()
        sessions.removeValue(forKey: session.id)
        for thread in session.threads { attachedTIDs.remove(thread.target.tid) }
        bpf.untrack(session.threads)
        attachedVCPUs -= session.vcpuCount
        logger.info("vm detached", metadata: ["vm": "\(session.name)", "restored": "\(restored)"])
        return restored
    }
}
