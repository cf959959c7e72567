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
        descriptor = FileDescriptor(rawValue: try UnixSocketIO.bindAndListen(.seqPacket, path: path, access: access, backlog: backlog))
        self.path = path
    }

    /// The next pending connection (nonblocking, close-on-exec), or nil when none is waiting.
    public func accept() throws(Errno) -> SeqPacketConnection? {
        try UnixSocketIO.accept(descriptor.rawValue).map { SeqPacketConnection(adopting: $0, nonblocking: true) }
    }

    /// Closes the socket and removes its file (if a socket is still there).
    deinit { UnixSocketIO.closeListener(descriptor.rawValue, path: path) }
}
