import SystemPackage
import VCPUFreqLinux
import VCPUFreqProtocol

/// One VMM connection: its protocol state, its buffers (allocated once) and
/// the replies the socket could not take yet.
final class Connection {
    enum State {
        /// Connected; HELLO must come first.
        case awaitingHello
        /// HELLO done; may ATTACH or ask STATUS.
        case ready
        /// A VM is attached through this connection.
        case attached(VMSession)
    }

    let id: UInt32
    let socket: SeqPacketConnection
    let peer: PeerCredentials
    var state: State = .awaitingHello
    var clientName = ""
    /// One byte more than the largest client message, so a longer packet is
    /// seen as truncated (MSG_TRUNC) rather than silently cut.
    var receiveBuffer: [UInt8]
    /// Reused for every reply.
    var writer = ByteWriter(capacity: 256)
    /// Replies waiting for the socket to drain (EAGAIN), oldest first.
    private(set) var outbox: [[UInt8]] = []
    private(set) var outboxBytes = 0
    /// Set when the connection must close once the outbox is flushed.
    var closeAfterFlush = false
    /// Registered for EPOLLOUT (outbox not empty).
    var wantsWritable = false

    /// A peer that reads nothing can make the daemon queue at most this much.
    static let maximumOutboxBytes = 4 << 20

    init(id: UInt32, socket: SeqPacketConnection, peer: PeerCredentials) {
        self.id = id
        self.socket = socket
        self.peer = peer
        receiveBuffer = Array(repeating: 0, count: Wire.maximumClientMessage + 1)
    }

    var session: VMSession? {
        if case .attached(let session) = state { return session }
        return nil
    }

    enum SendOutcome {
        case sent
        case queued
        /// The peer is gone or hopelessly behind: close the connection.
        case failed(Errno?)
    }

    /// Sends the message in `writer` (after `encode`). Messages without
    /// descriptors are queued when the socket is full; a message with
    /// descriptors must go at once (they belong to the session) or fail.
    func sendWriter(descriptors: [FileDescriptor] = []) -> SendOutcome {
        if !outbox.isEmpty {
            guard descriptors.isEmpty else { return .failed(nil) }
            return enqueue(writer.bytes)
        }
        do throws(Errno) {
            try socket.send(writer.bytes, descriptors: descriptors)
            return .sent
        } catch .resourceTemporarilyUnavailable {
            guard descriptors.isEmpty else { return .failed(.resourceTemporarilyUnavailable) }
            return enqueue(writer.bytes)
        } catch {
            return .failed(error)
        }
    }

    private func enqueue(_ bytes: [UInt8]) -> SendOutcome {
        guard outboxBytes + bytes.count <= Self.maximumOutboxBytes else { return .failed(nil) }
        outbox.append(bytes)
        outboxBytes += bytes.count
        return .queued
    }

    /// Sends queued replies until the socket is full again. Returns false
    /// when the peer is gone.
    func flush() -> Bool {
        while let first = outbox.first {
            do throws(Errno) {
                try socket.send(first)
            } catch .resourceTemporarilyUnavailable {
                return true
            } catch {
                return false
            }
            outbox.removeFirst()
            outboxBytes -= first.count
        }
        return true
    }
}
