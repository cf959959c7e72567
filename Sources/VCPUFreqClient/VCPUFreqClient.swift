import Foundation
import Glibc
import SystemPackage
import VCPUFreqLinux
import VCPUFreqProtocol

/// A VMM's connection to the vcpufreq daemon (protocol v1, docs/protocol.md).
///
/// Blocking and thread-safe: vCPU threads may forward accesses concurrently;
/// a mutex keeps each request and its reply together. `write` is posted (no
/// reply) unless `sync`; everything else waits for its reply.
public final class VCPUFreqClient: @unchecked Sendable {
    private let socket: SeqPacketConnection
    private let lock = AnnotatedMutex<Void>(())
    /// Only touched under `lock`.
    private var nextID: UInt32 = 1
    private var writer = ByteWriter(capacity: 256)
    private var receiveBuffer = [UInt8](repeating: 0, count: Wire.maximumDaemonMessage + 1)
    /// The daemon's answer to HELLO.
    public private(set) var hello = DaemonMessage.HelloOK(version: 0, features: 0, maximumVCPUs: 0, daemonVersion: "")

    /// Connects to the daemon at `socketPath` and says HELLO. With a
    /// positive `timeoutMilliseconds`, a reply (or a send) that takes longer
    /// fails with `ClientError.timedOut` instead of blocking the calling vCPU
    /// thread for good behind a stuck daemon.
    public init(
        socketPath: String, clientName: String, features: UInt32 = SharedPageABIFeatures.all, timeoutMilliseconds: Int = 0
    ) throws(ClientError) {
        do {
            socket = try SeqPacketConnection.connect(to: socketPath)
        } catch {
            throw .system("connect to \(socketPath)", error)
        }
        if timeoutMilliseconds > 0 {
            var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
            for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
                guard setsockopt(socket.descriptor.rawValue, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0
                else { throw .system("setsockopt", Errno(rawValue: errno)) }
            }
        }
        let reply = try exchange(.hello(.init(features: features, clientName: clientName)))
        guard case .helloOK(let ok) = reply.message else { throw .unexpected(reply.message.type) }
        hello = ok
    }

    // The socket closes its descriptor when it goes away (closing it here
    // too would close whatever descriptor reused the number meanwhile).

    /// Attaches a VM: the host TID of each vCPU thread, in vCPU order.
    public func attach(vmName: String, profile: String = "", threadIDs: [Int32]) throws(ClientError) -> DaemonMessage.AttachOK {
        let reply = try exchange(.attach(.init(vmName: vmName, profile: profile, threadIDs: threadIDs)))
        guard case .attachOK(let ok) = reply.message else { throw .unexpected(reply.message.type) }
        return ok
    }

    /// Detaches the VM; returns how many threads the daemon restored.
    @discardableResult
    public func detach() throws(ClientError) -> UInt32 {
        let reply = try exchange(.detach)
        guard case .detachOK(let restored) = reply.message else { throw .unexpected(reply.message.type) }
        return restored
    }

    /// A guest load from the device space; returns the value and the
    /// device's invalid-access code (0 = valid, else code + 1).
    public func read(vcpu: Int, offset: UInt64, width: Int = 4) throws(ClientError) -> (value: UInt64, invalid: UInt32) {
        let reply = try exchange(.read(.init(vcpu: UInt32(truncatingIfNeeded: vcpu), width: UInt32(truncatingIfNeeded: width), offset: offset)))
        guard case .readOK(let value, let invalid) = reply.message else { throw .unexpected(reply.message.type) }
        return (value, invalid)
    }

    /// A guest store. Posted unless `sync`: then it returns once processed,
    /// with the device's invalid-access code (0 = valid, else code + 1);
    /// a posted write returns 0.
    @discardableResult
    public func write(vcpu: Int, offset: UInt64, value: UInt64, width: Int = 4, sync: Bool = false) throws(ClientError) -> UInt32 {
        let message = ClientMessage.write(.init(
            vcpu: UInt32(truncatingIfNeeded: vcpu), width: UInt32(truncatingIfNeeded: width), offset: offset, value: value, sync: sync))
        if sync {
            let reply = try exchange(message)
            guard case .writeOK(let invalid) = reply.message else { throw .unexpected(reply.message.type) }
            return invalid
        }
        _ = try lock.withLock { _ throws(ClientError) in try sendLocked(message) }
        return 0
    }

    /// The shared memory: the page's descriptor (`layout.pageKind`: a memfd
    /// that also holds the mirror, or a BPF map with the mirror in a memfd of
    /// its own), its layout, and one doorbell eventfd per vCPU. The caller
    /// owns the descriptors.
    public struct SharedMemory {
        /// Map the page at `layout.pageOffset` of this.
        public var page: FileDescriptor
        /// The mirror's own memfd (a BPF-map page with a mirror); nil when the
        /// mirror, if any, is in `page`.
        public var mirror: FileDescriptor?
        public var layout: DaemonMessage.SharedLayout
        public var doorbells: [FileDescriptor]

        /// Where the mirror is, at `layout.mirrorOffset`.
        public var mirrorDescriptor: FileDescriptor { mirror ?? page }
        /// Every descriptor, for closing.
        public var descriptors: [FileDescriptor] { [page] + (mirror.map { [$0] } ?? []) + doorbells }
    }

    /// Asks for the shared memory; waits for SHARED_OK and every DOORBELLS.
    /// On any failure every descriptor received so far is closed.
    public func mapShared(mirror: Bool, doorbells: Bool) throws(ClientError) -> SharedMemory {
        var flags: UInt32 = 0
        if mirror { flags |= ClientMessage.MapSharedRequest.mirror }
        if doorbells { flags |= ClientMessage.MapSharedRequest.doorbells }
        return try lock.withLock { _ throws(ClientError) -> SharedMemory in
            let id = try sendLocked(.mapShared(.init(flags: flags)))
            let first = try receiveLocked(id: id, maximumDescriptors: 2)
            guard case .sharedOK(let layout) = first.message, first.descriptors.count == layout.descriptorCount else {
                Self.close(first.descriptors)
                throw .unexpected(first.message.type)
            }
            var shared = SharedMemory(
                page: first.descriptors[0], mirror: first.descriptors.count > 1 ? first.descriptors[1] : nil,
                layout: layout, doorbells: [])
            func abandon() { Self.close(shared.descriptors) }
            for _ in 0..<layout.doorbellMessages {
                let next: Reply
                switch Result(catching: { () throws(ClientError) in
                    try receiveLocked(id: id, maximumDescriptors: Wire.doorbellsPerMessage)
                }) {
                case .success(let reply): next = reply
                case .failure(let error):
                    abandon()
                    throw error
                }
                guard case .doorbells(let start, let count) = next.message, Int(count) == next.descriptors.count,
                    Int(start) == shared.doorbells.count
                else {
                    Self.close(next.descriptors)
                    abandon()
                    throw .unexpected(next.message.type)
                }
                shared.doorbells += next.descriptors
            }
            guard shared.doorbells.count == Int(layout.doorbellCount) else {
                abandon()
                throw .protocolViolation("\(shared.doorbells.count) doorbells received, \(layout.doorbellCount) announced")
            }
            return shared
        }
    }

    private static func close(_ descriptors: [FileDescriptor]) {
        for descriptor in descriptors { try? descriptor.close() }
    }

    /// The daemon's status document.
    public func status(allVMs: Bool = true) throws(ClientError) -> StatusDocument {
        try Self.decodeStatus(try statusJSON(allVMs: allVMs))
    }

    /// The status document in the daemon's JSON (whatever the daemon sent:
    /// the status fuzz target feeds it any bytes).
    static func decodeStatus(_ json: [UInt8]) throws(ClientError) -> StatusDocument {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(StatusDocument.self, from: Data(json))
        } catch {
            throw .badStatus("\(error)")
        }
    }

    /// The raw JSON bytes of the status document (chunks joined).
    public func statusJSON(allVMs: Bool = true) throws(ClientError) -> [UInt8] {
        var json: [UInt8] = []
        try lock.withLock { _ throws(ClientError) in
            let id = try sendLocked(.status(.init(flags: allVMs ? ClientMessage.StatusRequest.allVMs : 0)))
            var expected: UInt32 = 0
            var total: UInt32 = 1
            while expected < total {
                let reply = try receiveLocked(id: id, maximumDescriptors: 0)
                guard case .statusOK(let chunk, let chunks, let bytes) = reply.message, chunk == expected, chunks >= 1 else {
                    throw .unexpected(reply.message.type)
                }
                total = chunks
                json += bytes
                expected += 1
            }
        }
        return json
    }

    // MARK: Plumbing (under the lock)

    private func exchange(_ message: ClientMessage) throws(ClientError) -> Reply {
        try lock.withLock { _ throws(ClientError) in try exchangeLocked(message) }
    }

    private func exchangeLocked(_ message: ClientMessage) throws(ClientError) -> Reply {
        let id = try sendLocked(message)
        return try receiveLocked(id: id, maximumDescriptors: 0)
    }

    @discardableResult
    private func sendLocked(_ message: ClientMessage) throws(ClientError) -> UInt32 {
        let id = nextID
        nextID &+= 1
        message.encode(id: id, into: &writer)
        do {
            try socket.send(writer.bytes)
        } catch .resourceTemporarilyUnavailable {
            throw .timedOut
        } catch {
            // The daemon may have answered ERROR and closed before this send
            // (a refused peer): that ERROR is still queued here and says
            // why, where EPIPE would not.
            if error == .brokenPipe || error == .connectionReset {
                do {
                    _ = try receiveLocked(id: id, maximumDescriptors: 0)
                } catch .daemon(let code, let text) {
                    throw .daemon(code, text)
                } catch {}
            }
            throw .system("send", error)
        }
        return id
    }

    struct Reply {
        var message: DaemonMessage
        var descriptors: [FileDescriptor]
    }

    /// Receives the reply to `id`. An ERROR becomes `ClientError.daemon`.
    private func receiveLocked(id: UInt32, maximumDescriptors: Int) throws(ClientError) -> Reply {
        var outcome = receiveBuffer.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) in try socket.receive(into: buffer, maximumDescriptors: maximumDescriptors) }
        }
        if case .failure(.connectionReset) = outcome {
            // The daemon closed while our last message was unread: the
            // kernel reports that first, but the ERROR it sent before
            // closing may still be queued behind it.
            outcome = receiveBuffer.withUnsafeMutableBytes { buffer in
                Result { () throws(Errno) in try socket.receive(into: buffer, maximumDescriptors: maximumDescriptors) }
            }
            if case .failure = outcome { outcome = .failure(.connectionReset) }
        }
        let received: ReceivedMessage
        switch outcome {
        case .success(let message): received = message
        case .failure(let error): throw .system("receive", error)
        }
        let count: Int
        switch received {
        case .message(let byteCount, _): count = byteCount
        case .endOfStream: throw .closed
        case .wouldBlock: throw .timedOut
        case .dataTruncated, .descriptorsTruncated: throw .protocolViolation("reply too large")
        }
        let decoded = receiveBuffer.withUnsafeBytes { raw in
            Result { () throws(ProtocolViolation) in try DaemonMessage.decode(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
        }
        let (header, message): (MessageHeader, DaemonMessage)
        switch decoded {
        case .success(let value): (header, message) = value
        case .failure(let violation): throw .protocolViolation(violation.description)
        }
        if case .error(let code, _, let text) = message { throw .daemon(code, text) }
        guard header.id == id else { throw .protocolViolation("reply to request \(header.id), expected \(id)") }
        // Keep the descriptors: release them from their owners so they stay open.
        let descriptors = received.descriptors.map { $0.release() }
        return Reply(message: message, descriptors: descriptors)
    }
}

/// Feature bits a client asks for by default (all the shared page offers).
/// A VMM that can map a BPF-map page adds `ProtocolFeature.bpfMapPage`.
public enum SharedPageABIFeatures {
    public static let all: UInt32 = 0x1F
}

/// Why a client call failed. The description is the message.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    /// The daemon answered ERROR (and closed the connection).
    case daemon(ErrorCode, String)
    case system(String, Errno)
    /// The daemon closed the connection.
    case closed
    /// No reply within the client's timeout.
    case timedOut
    case unexpected(MessageType)
    case protocolViolation(String)
    case badStatus(String)

    public var description: String {
        switch self {
        case .daemon(let code, let text): return "daemon refused (\(code)): \(text)"
        case .system(let what, let errno): return "\(what): \(errno)"
        case .closed: return "the daemon closed the connection"
        case .timedOut: return "no reply from the daemon within the timeout"
        case .unexpected(let type): return "unexpected reply \(type)"
        case .protocolViolation(let text): return "protocol violation: \(text)"
        case .badStatus(let text): return "unreadable status document: \(text)"
        }
    }
}
