/// The outcome of receiving one SOCK_SEQPACKET message. Truncation is its
/// own case because a truncated control message is a protocol violation the
/// caller must answer (drop the peer), not data to parse. In every case the
/// descriptors that arrived are owned here: dropping the value closes them.
public enum ReceivedMessage {
    /// A whole message: `byteCount` bytes in the caller's buffer, and the
    /// descriptors that came with it.
    case message(byteCount: Int, descriptors: [OwnedDescriptor])
    /// The message was longer than the buffer (MSG_TRUNC): the first
    /// `byteCount` bytes are in the buffer, the rest is lost.
    case dataTruncated(byteCount: Int, descriptors: [OwnedDescriptor])
    /// More descriptors were sent than the caller allowed (MSG_CTRUNC): the
    /// kernel closed those without room, this side closed any extra it got.
    case descriptorsTruncated(byteCount: Int, descriptors: [OwnedDescriptor])
    /// The peer closed the connection.
    case endOfStream
    /// Nonblocking socket with nothing to read.
    case wouldBlock

    /// The descriptors carried, whatever the case.
    public var descriptors: [OwnedDescriptor] {
        switch self {
        case .message(_, let fds), .dataTruncated(_, let fds), .descriptorsTruncated(_, let fds): return fds
        case .endOfStream, .wouldBlock: return []
        }
    }
}
