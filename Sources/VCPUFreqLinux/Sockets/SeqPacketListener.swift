import SystemPackage

/// A listening Unix SOCK_SEQPACKET socket at a filesystem path, nonblocking
/// so accept() fits the daemon's epoll loop.
public final class SeqPacketListener: UnixSocketListener {
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

    public typealias Occupant = UnixSocketOccupant

    /// Whether a daemon listens at `path` (a seqpacket connect probe; see
    /// `UnixSocketIO.occupant(of:probingWith:)`).
    public static func occupant(of path: String) -> Occupant { UnixSocketIO.occupant(of: path, probingWith: .seqPacket) }

    /// Binds, sets the access and listens, after checking what is at `path`:
    /// a stale socket file (a dead daemon's) is removed; a live listener, or
    /// one that cannot be checked, fails with EADDRINUSE / the connect
    /// errno and is left alone. Any other file at `path` makes bind fail
    /// rather than be deleted. The socket file's identity is remembered, so
    /// deinit removes only this listener's own file.
    public init(path: String, access: Access = Access(), backlog: Int32 = 64) throws(Errno) {
        let bound = try UnixSocketIO.bindAndListen(.seqPacket, path: path, access: access, backlog: backlog)
        descriptor = FileDescriptor(rawValue: bound.descriptor)
        boundFile = bound.boundFile
        self.path = path
    }

    /// The next pending connection (nonblocking, close-on-exec), or nil when none is waiting.
    public func accept() throws(Errno) -> SeqPacketConnection? {
        try UnixSocketIO.accept(descriptor.rawValue).map { SeqPacketConnection(adopting: $0, nonblocking: true) }
    }

    /// Closes the socket and removes its file while it is still the one bound.
    deinit { UnixSocketIO.closeListener(descriptor.rawValue, path: path, boundFile: boundFile) }
}
