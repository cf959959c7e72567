import CVCPUFreqSys
import SystemPackage

/// One connected Unix SOCK_SEQPACKET socket (close-on-exec): message
/// boundaries are kept and descriptors travel with SCM_RIGHTS, which is how a
/// VMM hands the daemon its doorbell eventfds and receives the shared page.
public final class SeqPacketConnection {
    /// The most descriptors one message carries (the kernel's SCM_MAX_FD).
    public static let maximumDescriptors = Int(VCPUFREQ_SYS_MAX_FDS)

    public let descriptor: FileDescriptor
    public let nonblocking: Bool

    init(adopting fd: Int32, nonblocking: Bool) {
        descriptor = FileDescriptor(rawValue: fd)
        self.nonblocking = nonblocking
    }

    /// Connects (blocking) to a listener at `path`.
    public static func connect(to path: String) throws(Errno) -> SeqPacketConnection {
        SeqPacketConnection(adopting: try UnixSocketIO.connect(.seqPacket, to: path), nonblocking: false)
    }

    /// A connected pair (blocking), for tests and in-process peers.
    public static func pair() throws(Errno) -> (SeqPacketConnection, SeqPacketConnection) {
        let fds = try UnixSocketKind.seqPacket.pair()
        return (SeqPacketConnection(adopting: fds.0, nonblocking: false), SeqPacketConnection(adopting: fds.1, nonblocking: false))
    }

    /// Sends one message with up to `maximumDescriptors` descriptors (the
    /// sender keeps its copies open; the receiver gets new ones).
    public func send(_ bytes: UnsafeRawBufferPointer, descriptors: [FileDescriptor] = []) throws(Errno) {
        _ = try UnixSocketIO.send(descriptor.rawValue, bytes, descriptors: descriptors, nonblocking: nonblocking)
    }

    /// `send` for an array of bytes.
    public func send(_ bytes: [UInt8], descriptors: [FileDescriptor] = []) throws(Errno) {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(Errno) in try send(buffer, descriptors: descriptors) } }
        try result.get()
    }

    /// Receives one message into `buffer`, accepting at most
    /// `maximumDescriptors` descriptors (0...253). Received descriptors are
    /// close-on-exec and owned by the result.
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer, maximumDescriptors: Int = 0
    ) throws(Errno) -> ReceivedMessage {
        try UnixSocketIO.receive(descriptor.rawValue, into: buffer, maximumDescriptors: maximumDescriptors, nonblocking: nonblocking)
    }

    /// The peer's pid/uid/gid as the kernel recorded them (SO_PEERCRED).
    public func peerCredentials() throws(Errno) -> PeerCredentials {
        try UnixSocketIO.peerCredentials(descriptor.rawValue)
    }

    deinit { _ = system_close(descriptor.rawValue) }
}
