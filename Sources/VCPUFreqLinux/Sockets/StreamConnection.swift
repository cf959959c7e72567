import SystemPackage

/// One connected Unix SOCK_STREAM socket (close-on-exec): a vhost-user
/// front-end (QEMU's or crosvm's chardev socket). No message boundaries:
/// the reader frames; descriptors travel with SCM_RIGHTS attached to bytes.
public final class StreamConnection {
    public let descriptor: FileDescriptor
    public let nonblocking: Bool

    init(adopting fd: Int32, nonblocking: Bool) {
        descriptor = FileDescriptor(rawValue: fd)
        self.nonblocking = nonblocking
    }

    /// Connects (blocking) to a listener at `path` (tests play the front-end).
    public static func connect(to path: String) throws(Errno) -> StreamConnection {
        StreamConnection(adopting: try UnixSocketIO.connect(.stream, to: path), nonblocking: false)
    }

    /// A connected pair (blocking).
    public static func pair() throws(Errno) -> (StreamConnection, StreamConnection) {
        let fds = try UnixSocketKind.stream.pair()
        return (StreamConnection(adopting: fds.0, nonblocking: false), StreamConnection(adopting: fds.1, nonblocking: false))
    }

    /// Sends bytes (and descriptors with the first of them); returns how
    /// many bytes the socket took (fewer than all when nonblocking and full).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, descriptors: [FileDescriptor] = []) throws(Errno) -> Int {
        try UnixSocketIO.send(descriptor.rawValue, bytes, descriptors: descriptors, nonblocking: nonblocking)
    }

    @discardableResult
    public func send(_ bytes: [UInt8], descriptors: [FileDescriptor] = []) throws(Errno) -> Int {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(Errno) in try send(buffer, descriptors: descriptors) } }
        return try result.get()
    }

    /// Receives up to `buffer.count` bytes with at most `maximumDescriptors`
    /// descriptors: `.message` (bytes, descriptors), `.descriptorsTruncated`
    /// (more descriptors came than allowed: a protocol error), `.endOfStream`
    /// or `.wouldBlock`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, maximumDescriptors: Int = 0) throws(Errno) -> ReceivedMessage {
        try UnixSocketIO.receive(descriptor.rawValue, into: buffer, maximumDescriptors: maximumDescriptors, nonblocking: nonblocking)
    }

    /// The peer's pid/uid/gid as the kernel recorded them at connect (SO_PEERCRED).
    public func peerCredentials() throws(Errno) -> PeerCredentials {
        try UnixSocketIO.peerCredentials(descriptor.rawValue)
    }

    deinit { _ = system_close(descriptor.rawValue) }
}

/// A listening Unix SOCK_STREAM socket at a path (nonblocking): where a
/// vhost-user front-end connects. Bound and removed by the same rules as
/// `SeqPacketListener` (a live listener is never taken over, a stale socket
/// file is removed, deinit removes only the file this listener bound).
public final class StreamListener: UnixSocketListener {
    public let descriptor: FileDescriptor
    public let path: String
    /// The socket file bind created (nil if it vanished at once).
    public let boundFile: FileIdentity?

    /// Whether anyone listens at `path` (a stream connect probe).
    public static func occupant(of path: String) -> UnixSocketOccupant { UnixSocketIO.occupant(of: path, probingWith: .stream) }

    public init(path: String, access: SeqPacketListener.Access = .init(), backlog: Int32 = 4) throws(Errno) {
        let bound = try UnixSocketIO.bindAndListen(.stream, path: path, access: access, backlog: backlog)
        descriptor = FileDescriptor(rawValue: bound.descriptor)
        boundFile = bound.boundFile
        self.path = path
    }

    public func accept() throws(Errno) -> StreamConnection? {
        try UnixSocketIO.accept(descriptor.rawValue).map { StreamConnection(adopting: $0, nonblocking: true) }
    }

    deinit { UnixSocketIO.closeListener(descriptor.rawValue, path: path, boundFile: boundFile) }
}
