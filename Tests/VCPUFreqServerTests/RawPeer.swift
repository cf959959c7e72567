import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqLinux
import VCPUFreqProtocol

/// A connection that sends arbitrary bytes (and descriptors) and reads
/// whatever comes back: the malformed-input tests' peer. Receives time out
/// after 5 s (SO_RCVTIMEO), so a daemon that stays silent fails the test
/// instead of hanging it.
final class RawPeer {
    let socket: SeqPacketConnection
    private var nextID: UInt32 = 100
    private var buffer = [UInt8](repeating: 0, count: Wire.maximumDaemonMessage + 1)

    init(_ path: String) throws {
        socket = try SeqPacketConnection.connect(to: path)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        guard setsockopt(socket.descriptor.rawValue, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw Errno(rawValue: errno)
        }
    }

    /// What one receive produced.
    enum Reply: Equatable {
        case message(header: MessageHeader, DaemonMessage, descriptorCount: Int)
        /// The daemon closed the connection.
        case closed
        /// Nothing within the timeout.
        case silent
        case undecodable(String)
    }

    func send(_ bytes: [UInt8], descriptors: [FileDescriptor] = []) throws {
        try socket.send(bytes, descriptors: descriptors)
    }

    /// Encodes `message` with a fresh id; returns the id.
    @discardableResult
    func send(_ message: ClientMessage) throws -> UInt32 {
        let id = nextID
        nextID += 1
        var writer = ByteWriter()
        message.encode(id: id, into: &writer)
        try send(writer.bytes)
        return id
    }

    func receive() throws -> Reply {
        let outcome = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try socket.receive(into: raw, maximumDescriptors: 253) }
        }
        let received = try outcome.get()
        switch received {
        case .endOfStream: return .closed
        case .wouldBlock: return .silent
        case .dataTruncated, .descriptorsTruncated: return .undecodable("truncated reply")
        case .message(let count, let descriptors):
            let decoded = buffer.withUnsafeBytes { raw in
                Result { () throws(ProtocolViolation) in try DaemonMessage.decode(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
            }
            switch decoded {
            case .success(let (header, message)): return .message(header: header, message, descriptorCount: descriptors.count)
            case .failure(let violation): return .undecodable(violation.description)
            }
        }
    }

    /// Receives one message, which must be a reply (not an error).
    func expectReply(sourceLocation: SourceLocation = #_sourceLocation) throws -> DaemonMessage {
        let reply = try receive()
        guard case .message(_, let message, _) = reply else {
            Issue.record("expected a reply, got \(reply)", sourceLocation: sourceLocation)
            throw DaemonError(description: "no reply")
        }
        if case .error = message { Issue.record("expected a reply, got \(message)", sourceLocation: sourceLocation) }
        return message
    }

    /// HELLO (version 1) and its HELLO_OK.
    func hello() throws {
        try send(.hello(.init(clientName: "raw peer")))
        guard case .helloOK = try expectReply() else { throw DaemonError(description: "no HELLO_OK") }
    }

    /// ATTACH and its ATTACH_OK.
    func attach(vmName: String, profile: String, threadIDs: [Int32]) throws {
        try send(.attach(.init(vmName: vmName, profile: profile, threadIDs: threadIDs)))
        guard case .attachOK = try expectReply() else { throw DaemonError(description: "no ATTACH_OK") }
    }
}

/// Raw message bytes, built field by field (not with the codec under test):
/// little-endian, the 16-byte header of docs/protocol.md.
struct RawMessage {
    var bytes: [UInt8] = []

    init(type: UInt16, flags: UInt16 = 0, id: UInt32, reserved: UInt32 = 0, length: UInt32? = nil, body: [UInt8] = []) {
        u16(type)
        u16(flags)
        u32(length ?? UInt32(16 + body.count))
        u32(id)
        u32(reserved)
        bytes += body
    }

    init() {}

    mutating func u16(_ value: UInt16) { bytes += [UInt8(value & 0xff), UInt8(value >> 8)] }
    mutating func u32(_ value: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((value >> UInt32(shift)) & 0xff)) } }
    mutating func u64(_ value: UInt64) { for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8((value >> UInt64(shift)) & 0xff)) } }
    mutating func string(_ text: String) {
        u16(UInt16(text.utf8.count))
        bytes += Array(text.utf8)
    }

    /// A body built with the field writers.
    static func body(_ build: (inout RawMessage) -> Void) -> [UInt8] {
        var message = RawMessage()
        build(&message)
        return message.bytes
    }
}
