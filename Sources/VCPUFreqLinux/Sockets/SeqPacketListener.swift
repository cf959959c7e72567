import SystemPackage

/// A listening Unix SOCK_SEQPACKET socket at a filesystem path, nonblocking
/// so accept() fits the daemon's epoll loop.
public final class SeqPacketListener {
    public let descriptor: FileDescriptor
    public let path: String
    /// The socket file bind created (nil if it vanished at once): deinit
    /// removes the file at `path` only while it is still this one.
    public let boundFile: FileIdentity?

    /// Who may connect: the socket file's permission bits and group. 0600
    /// (owner only) by default; a group lets non-root VMMs in with 0660.
    public struct Access: Sendable {
        public var mode: UInt32
        public var groupID: UInt32?
        public init(mode: UInt32 = 0o600, groupID: UInt32? = nil) {
            self.mode = mode
            self.groupID = groupID
        }
    }

    /// What is at a socket path before a daemon binds it.
    public enum Occupant: Equatable, Sendable {
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

    /// Finds out whether a daemon listens at `path` by connecting to it
    /// (nonblocking; the probe connection is closed at once). A live
    /// listener sees a connection that closes without a message.
    public static func occupant(of path: String) -> Occupant {
        switch FileStatusProbe.kind(of: path) {
        case .missing: return .none
        case .socket: break
        default: return .notASocket
        }
        let probe: SeqPacketConnection
        do {
            probe = SeqPacketConnection(adopting: try valueOrErrno { system_seqpacket_socket(true) }, nonblocking: true)
        } catch {
            return .unknown(error)
        }
        let connected = path.withCString { cPath in syscallResult { system_connect(probe.descriptor.rawValue, cPath) } }
        switch connected {
        case .success: return .live(pid: try? probe.peerCredentials().pid)
        // A full backlog, or a listener of another socket type: someone is there.
        case .failure(.resourceTemporarilyUnavailable), .failure(.protocolWrongTypeForSocket): return .live(pid: nil)
        case .failure(.connectionRefused): return .stale
        case .failure(.noSuchFileOrDirectory): return .none
        case .failure(let error): return .unknown(error)
        }
    }

    /// Binds, sets the access and listens, after checking what is at `path`:
    /// a stale socket file (a dead daemon's) is removed; a live listener, or
    /// one that cannot be checked, fails with EADDRINUSE / the connect
    /// errno and is left alone. Any other file at `path` makes bind fail
    /// rather than be deleted. The socket file's identity is remembered, so
    /// deinit removes only this listener's own file.
    public init(path: String, access: Access = Access(), backlog: Int32 = 64) throws(Errno) {
        switch Self.occupant(of: path) {
        case .none, .notASocket: break
        case .stale: try Self.removeStaleSocket(at: path)
        case .live: throw Errno.addressInUse
        case .unknown(let error): throw error
        }
        descriptor = FileDescriptor(rawValue: try Self.bindAndListen(path: path, access: access, backlog: backlog))
        self.path = path
        boundFile = FileIdentity.of(path: path)
    }

    /// Everything that can fail, before `self` exists: a failed init must
    /// not run deinit, which would unlink whatever file is at `path`.
    private static func bindAndListen(path: String, access: Access, backlog: Int32) throws(Errno) -> Int32 {
        let fd = try valueOrErrno { system_seqpacket_socket(true) }
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

    /// The next pending connection (nonblocking, close-on-exec), or nil when none is waiting.
    public func accept() throws(Errno) -> SeqPacketConnection? {
        switch syscallResult({ system_accept(descriptor.rawValue) }) {
        case .success(let fd): return SeqPacketConnection(adopting: fd, nonblocking: true)
        case .failure(.resourceTemporarilyUnavailable): return nil
        case .failure(let error): throw error
        }
    }

    static func removeStaleSocket(at path: String) throws(Errno) {
        let removed = path.withCString { cPath in syscallResult { system_unlink(cPath) } }
        switch removed {
        case .success, .failure(.noSuchFileOrDirectory): return
        case .failure(let error): throw error
        }
    }

    /// Closes the socket and removes its file, if the file at `path` is
    /// still the one this listener bound (not a socket another process put
    /// there since).
    deinit {
        _ = system_close(descriptor.rawValue)
        if let boundFile, FileStatusProbe.kind(of: path) == .socket, FileIdentity.of(path: path) == boundFile {
            _ = path.withCString { system_unlink($0) }
        }
    }
}
