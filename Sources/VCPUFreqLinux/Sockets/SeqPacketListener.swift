import SystemPackage

/// A listening Unix SOCK_SEQPACKET socket at a filesystem path, nonblocking
/// so accept() fits the daemon's epoll loop.
public final class SeqPacketListener {
    public let descriptor: FileDescriptor
    public let path: String

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

    /// Removes a stale socket file at `path` (a previous daemon that died
    /// leaves one; bind would fail with EADDRINUSE), binds, sets the access
    /// and listens. Only a socket file is removed: any other file at `path`
    /// makes bind fail rather than be deleted.
    public init(path: String, access: Access = Access(), backlog: Int32 = 64) throws(Errno) {
        try Self.removeStaleSocket(at: path)
        descriptor = FileDescriptor(rawValue: try Self.bindAndListen(path: path, access: access, backlog: backlog))
        self.path = path
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
        let status = FileStatusProbe.kind(of: path)
        guard status == .socket else { return }
        let removed = path.withCString { cPath in syscallResult { system_unlink(cPath) } }
        switch removed {
        case .success, .failure(.noSuchFileOrDirectory): return
        case .failure(let error): throw error
        }
    }

    /// Closes the socket and removes its file (if a socket is still there).
    deinit {
        _ = system_close(descriptor.rawValue)
        if FileStatusProbe.kind(of: path) == .socket { _ = path.withCString { system_unlink($0) } }
    }
}
