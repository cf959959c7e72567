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
        let fd = try valueOrErrno { system_seqpacket_socket(false) }
        let connection = SeqPacketConnection(adopting: fd, nonblocking: false)
        let result = path.withCString { cPath in syscallResult { system_connect(fd, cPath) } }
        _ = try result.get()
        return connection
    }

    /// A connected pair (blocking), for tests and in-process peers.
    public static func pair() throws(Errno) -> (SeqPacketConnection, SeqPacketConnection) {
        var fds: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutableBytes(of: &fds) { raw in
            syscallResult { system_seqpacket_pair(raw.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        }
        _ = try result.get()
        return (SeqPacketConnection(adopting: fds.0, nonblocking: false),
                SeqPacketConnection(adopting: fds.1, nonblocking: false))
    }

    /// Sends one message with up to `maximumDescriptors` descriptors (the
    /// sender keeps its copies open; the receiver gets new ones).
    public func send(_ bytes: UnsafeRawBufferPointer, descriptors: [FileDescriptor] = []) throws(Errno) {
        guard descriptors.count <= Self.maximumDescriptors else { throw Errno.invalidArgument }
        let fds = descriptors.map(\.rawValue)
        let result = fds.withUnsafeBufferPointer { list in
            syscallResult { system_send(descriptor.rawValue, bytes, list, nonblocking) }
        }
        _ = try result.get()
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
        let capacity = min(max(maximumDescriptors, 0), Self.maximumDescriptors)
        var fdCount: Int32 = 0
        var truncation: Int32 = 0
        let result = withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(capacity, 1)) { fds in
            let received = syscallResult {
                system_receive(
                    descriptor.rawValue, buffer, UnsafeMutableBufferPointer(rebasing: fds[0..<capacity]), &fdCount,
                    &truncation, nonblocking)
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

    /// The peer's pid/uid/gid as the kernel recorded them (SO_PEERCRED).
    public func peerCredentials() throws(Errno) -> PeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        _ = try valueOrErrno { system_peer_credentials(descriptor.rawValue, &pid, &uid, &gid) }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    deinit { _ = system_close(descriptor.rawValue) }
}
