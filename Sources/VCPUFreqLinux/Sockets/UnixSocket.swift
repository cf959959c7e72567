import CVCPUFreqSys
import SystemPackage

/// The two kinds of Unix socket the daemon serves: SOCK_SEQPACKET for its
/// own protocol (docs/protocol.md), SOCK_STREAM for vhost-user (the
/// front-ends' chardev sockets are streams). Both pass descriptors with
/// SCM_RIGHTS through the same calls.
enum UnixSocketKind {
    case seqPacket, stream

    func socket(nonblocking: Bool) -> Int32 {
        switch self {
        case .seqPacket: return system_seqpacket_socket(nonblocking)
        case .stream: return system_stream_socket(nonblocking)
        }
    }

    /// A connected pair (blocking).
    func pair() throws(Errno) -> (Int32, Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutableBytes(of: &fds) { raw in
            syscallResult { () -> Int32 in
                let pointer = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
                switch self {
                case .seqPacket: return system_seqpacket_pair(pointer)
                case .stream: return system_stream_pair(pointer)
                }
            }
        }
        _ = try result.get()
        return fds
    }
}

/// The socket calls both connection types share.
enum UnixSocketIO {
    /// Connects (blocking) a new socket of `kind` to a listener at `path`.
    static func connect(_ kind: UnixSocketKind, to path: String) throws(Errno) -> Int32 {
        let fd = try valueOrErrno { kind.socket(nonblocking: false) }
        let result = path.withCString { cPath in syscallResult { system_connect(fd, cPath) } }
        if case .failure(let error) = result {
            _ = system_close(fd)
            throw error
        }
        return fd
    }

    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, descriptors: [FileDescriptor], nonblocking: Bool) throws(Errno) -> Int {
        guard descriptors.count <= Int(VCPUFREQ_SYS_MAX_FDS) else { throw Errno.invalidArgument }
        let fds = descriptors.map(\.rawValue)
        let result = fds.withUnsafeBufferPointer { list in syscallResult { system_send(fd, bytes, list, nonblocking) } }
        return try result.get()
    }

    /// One recvmsg into `buffer` with room for `maximumDescriptors`
    /// (0...253); received descriptors are close-on-exec and owned by the result.
    static func receive(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, maximumDescriptors: Int, nonblocking: Bool
    ) throws(Errno) -> ReceivedMessage {
        let capacity = min(max(maximumDescriptors, 0), Int(VCPUFREQ_SYS_MAX_FDS))
        var fdCount: Int32 = 0
        var truncation: Int32 = 0
        let result = withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(capacity, 1)) { fds in
            let received = syscallResult {
                system_receive(fd, buffer, UnsafeMutableBufferPointer(rebasing: fds[0..<capacity]), &fdCount, &truncation, nonblocking)
            }
            // Own every descriptor before anything else can fail.
            let owned = (0..<Int(min(fdCount, Int32(capacity)))).map {
                OwnedDescriptor(taking: FileDescriptor(rawValue: fds[$0]))
            }
            return received.map { ($0, owned) }
        }
        switch result {
        case .failure(.resourceTemporarilyUnavailable): return .wouldBlock
        case .failure(let error): throw error
        case .success(let (byteCount, owned)):
            if truncation & Int32(VCPUFREQ_SYS_TRUNC_CONTROL) != 0 {
                return .descriptorsTruncated(byteCount: byteCount, descriptors: owned)
            }
            if truncation & Int32(VCPUFREQ_SYS_TRUNC_DATA) != 0 {
                return .dataTruncated(byteCount: byteCount, descriptors: owned)
            }
            if byteCount == 0 && owned.isEmpty { return .endOfStream }
            return .message(byteCount: byteCount, descriptors: owned)
        }
    }

    static func peerCredentials(_ fd: Int32) throws(Errno) -> PeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        _ = try valueOrErrno { system_peer_credentials(fd, &pid, &uid, &gid) }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    /// Removes a stale socket file at `path` (a previous daemon that died
    /// leaves one; bind would fail with EADDRINUSE). Only a socket file is
    /// removed: any other file at `path` makes bind fail rather than be deleted.
    static func removeStaleSocket(at path: String) throws(Errno) {
        guard FileStatusProbe.kind(of: path) == .socket else { return }
        let removed = path.withCString { cPath in syscallResult { system_unlink(cPath) } }
        switch removed {
        case .success, .failure(.noSuchFileOrDirectory): return
        case .failure(let error): throw error
        }
    }

    /// A nonblocking listening socket of `kind` bound at `path` with `access`.
    /// Everything that can fail happens here, before the listener object
    /// exists: a failed init must not run a deinit that unlinks whatever
    /// file is at `path`.
    static func bindAndListen(_ kind: UnixSocketKind, path: String, access: SeqPacketListener.Access, backlog: Int32) throws(Errno) -> Int32 {
        try removeStaleSocket(at: path)
        let fd = try valueOrErrno { kind.socket(nonblocking: true) }
        let result = path.withCString { cPath -> Result<Int32, Errno> in
            let bound = syscallResult { system_bind(fd, cPath) }
            guard case .success = bound else { return bound }
            let secured: Result<Int32, Errno>
            if let group = access.groupID {
                secured = syscallResult { system_chown(cPath, nil, group) }.flatMap { _ in
                    syscallResult { system_chmod(cPath, access.mode) }
                }
            } else {
                secured = syscallResult { system_chmod(cPath, access.mode) }
            }
            let listening = secured.flatMap { _ in syscallResult { system_listen(fd, backlog) } }
            if case .failure = listening { _ = system_unlink(cPath) }  // our socket file, half set up
            return listening
        }
        if case .failure(let error) = result {
            _ = system_close(fd)
            throw error
        }
        return fd
    }

    /// The next pending connection's descriptor (nonblocking, close-on-exec), nil when none waits.
    static func accept(_ fd: Int32) throws(Errno) -> Int32? {
        switch syscallResult({ system_accept(fd) }) {
        case .success(let accepted): return accepted
        case .failure(.resourceTemporarilyUnavailable): return nil
        case .failure(let error): throw error
        }
    }

    /// Closes a listener and removes its file (if a socket is still there).
    static func closeListener(_ fd: Int32, path: String) {
        _ = system_close(fd)
        if FileStatusProbe.kind(of: path) == .socket { _ = path.withCString { system_unlink($0) } }
    }
}
