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
        /// Closed by the daemon (its VM detached); nothing more is sent or read.
        case closed
    }

    let id: UInt32
    let socket: SeqPacketConnection
    let peer: PeerCredentials
    /// Start time of the peer process at accept (/proc/<pid>/stat field 22):
    /// SO_PEERCRED's pid names the process that connected, and if that
    /// process exits (a child may keep the socket) the pid can be reused by
    /// another. ATTACH checks the pid still has this start time before it
    /// trusts /proc/<pid>/task. nil when it could not be read.
    let peerStartTime: UInt64?
    var state: State = .awaitingHello
    var clientName = ""
    /// HELLO_OK's grant: shared page features and `ProtocolFeature` bits.
    var grantedFeatures: UInt32 = 0
    /// One byte more than the largest client message, so a longer packet is
    /// seen as truncated (MSG_TRUNC) rather than silently cut.
    var receiveBuffer: [UInt8]
    /// Reused for every reply.
    var writer = ByteWriter(capacity: 256)
    /// Replies waiting for the socket to drain (EAGAIN), oldest first from
    /// `outboxHead` (sent entries before it are dropped in batches, so a
    /// long queue drains in linear time).
    private var outbox: [[UInt8]] = []
    private var outboxHead = 0
    private(set) var outboxBytes = 0
    /// Registered for EPOLLOUT (outbox not empty).
    var wantsWritable = false

    /// A peer that reads nothing can make the daemon queue at most this much
    /// (then it is dropped). A well-behaved VMM has one READ per vCPU thread
    /// in flight; the largest legitimate burst is a STATUS document of the
    /// daemon's 1024 vCPUs, a few hundred KiB.
    static let maximumOutboxBytes = 1 << 20

    init(id: UInt32, socket: SeqPacketConnection, peer: PeerCredentials, peerStartTime: UInt64?) {
        self.id = id
        self.socket = socket
        self.peer = peer
        self.peerStartTime = peerStartTime
        receiveBuffer = Array(repeating: 0, count: Wire.maximumClientMessage + 1)
    }

    var session: VMSession? {
        if case .attached(let session) = state { return session }
        return nil
    }

    /// Nothing waits in the outbox.
    var outboxIsEmpty: Bool { outboxHead == outbox.count }

    /// Reads and drops what the peer sent and the daemon will not handle
    /// (at most `limit` messages), before the daemon closes the socket: a
    /// Unix socket closed with unread input makes the peer's next receive
    /// fail with ECONNRESET instead of delivering the ERROR sent just before.
    func discardPendingInput(limit: Int = 256) {
        for _ in 0..<limit {
            let outcome = receiveBuffer.withUnsafeMutableBytes { buffer in
                Result { () throws(Errno) in try socket.receive(into: buffer, maximumDescriptors: 0) }
            }
            // Descriptors that came along are closed with the result.
            guard case .success(let received) = outcome else { return }
            switch received {
            case .message, .dataTruncated, .descriptorsTruncated: continue
            case .endOfStream, .wouldBlock: return
            }
        }
    }

    /// The id and type of the message in the receive buffer, for an ERROR
    /// that echoes them: (0, 0) unless the packet reached the id field.
    func headerEcho(byteCount: Int) -> (id: UInt32, type: UInt16) {
        guard byteCount >= 12 else { return (0, 0) }
        return receiveBuffer.withUnsafeBytes { raw in
            (UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
             UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt16.self)))
        }
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
        if case .closed = state { return .failed(nil) }
        if !outboxIsEmpty {
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
        while outboxHead < outbox.count {
            let first = outbox[outboxHead]
            do throws(Errno) {
                try socket.send(first)
            } catch .resourceTemporarilyUnavailable {
                if outboxHead >= 1024, outboxHead * 2 >= outbox.count {
                    outbox.removeFirst(outboxHead)
                    outboxHead = 0
                }
                return true
            } catch {
                return false
            }
            outboxHead += 1
            outboxBytes -= first.count
        }
        outbox.removeAll(keepingCapacity: false)
        outboxHead = 0
        return true
    }
}
