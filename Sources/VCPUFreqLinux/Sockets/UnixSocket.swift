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

    /// Finds out whether a daemon listens at `path` by connecting a socket
    /// of `kind` to it (nonblocking; the probe connection is closed at
    /// once). A live listener sees a connection that closes without a message.
    static func occupant(of path: String, probingWith kind: UnixSocketKind) -> UnixSocketOccupant {
        switch FileStatusProbe.kind(of: path) {
        case .missing: return .none
        case .socket: break
        default: return .notASocket
        }
        let fd: Int32
        do { fd = try valueOrErrno { kind.socket(nonblocking: true) } } catch { return .unknown(error) }
        defer { _ = system_close(fd) }
        let connected = path.withCString { cPath in syscallResult { system_connect(fd, cPath) } }
        switch connected {
        case .success: return .live(pid: try? peerCredentials(fd).pid)
        // A full backlog, or a listener of another socket type: someone is there.
        case .failure(.resourceTemporarilyUnavailable), .failure(.protocolWrongTypeForSocket): return .live(pid: nil)
        case .failure(.connectionRefused): return .stale
        case .failure(.noSuchFileOrDirectory): return .none
        case .failure(let error): return .unknown(error)
        }
    }

    static func removeStaleSocket(at path: String) throws(Errno) {
        let removed = path.withCString { cPath in syscallResult { system_unlink(cPath) } }
        switch removed {
        case .success, .failure(.noSuchFileOrDirectory): return
        case .failure(let error): throw error
        }
    }

    /// A nonblocking listening socket of `kind` bound at `path` with `access`,
    /// after checking what is at `path` (`occupant(of:probingWith:)`): a
    /// stale socket file (a dead daemon's) is removed; a live listener, or
    /// one that cannot be checked, fails with EADDRINUSE / the connect errno
    /// and is left alone; any other file makes bind fail rather than be
    /// deleted. Everything that can fail happens here, before the listener
    /// object exists: a failed init must not run a deinit that unlinks
    /// whatever file is at `path`. Returns the descriptor and the identity
    /// of the socket file bind created (nil if it vanished at once).
    static func bindAndListen(
        _ kind: UnixSocketKind, path: String, access: SeqPacketListener.Access, backlog: Int32
    ) throws(Errno) -> (descriptor: Int32, boundFile: FileIdentity?) {
        switch occupant(of: path, probingWith: kind) {
        case .none, .notASocket: break
        case .stale: try removeStaleSocket(at: path)
        case .live: throw Errno.addressInUse
        case .unknown(let error): throw error
        }
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
        return (fd, FileIdentity.of(path: path))
    }

    /// The next pending connection's descriptor (nonblocking, close-on-exec), nil when none waits.
    static func accept(_ fd: Int32) throws(Errno) -> Int32? {
        switch syscallResult({ system_accept(fd) }) {
        case .success(let accepted): return accepted
        case .failure(.resourceTemporarilyUnavailable): return nil
        case .failure(let error): throw error
        }
    }

    /// Closes a listener and removes its file, if the file at `path` is
    /// still the one it bound (not a socket another process put there since).
    static func closeListener(_ fd: Int32, path: String, boundFile: FileIdentity?) {
        _ = system_close(fd)
        if let boundFile, FileStatusProbe.kind(of: path) == .socket, FileIdentity.of(path: path) == boundFile {
            _ = path.withCString { system_unlink($0) }
        }
    }
}

/// A listening Unix socket at a path, of either kind: bound after the
/// connect probe (`UnixSocketIO.bindAndListen`), removed at deinit only
/// while the file at its path is the one it bound.
public protocol UnixSocketListener: AnyObject {
    var descriptor: FileDescriptor { get }
    var path: String { get }
    /// The socket file bind created (nil if it vanished at once).
    var boundFile: FileIdentity? { get }
    init(path: String, access: SeqPacketListener.Access, backlog: Int32) throws(Errno)
    /// What is at `path` now, probed with a socket of this listener's kind.
    static func occupant(of path: String) -> UnixSocketOccupant
}

/// What is at a listening socket's path before a daemon binds it.
public enum UnixSocketOccupant: Equatable, Sendable {
    /// Nothing.
    case none
    /// A socket file nobody listens on (connect: ECONNREFUSED): a dead
    /// daemon's leftover, safe to remove.
    case stale
    /// A listener answered: `pid` is the listener's (SO_PEERCRED),
    /// nil when its backlog was full or it is a socket of another type.
    case live(pid: Int32?)
    /// A file that is not a socket: never removed (bind fails).
    case notASocket
    /// connect failed otherwise (EACCES: a socket this process may not
    /// use): whether anyone listens is unknown, so nothing is removed.
    case unknown(Errno)
}
