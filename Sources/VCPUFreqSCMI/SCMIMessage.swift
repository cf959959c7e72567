/// SCMI (Arm DEN0056) message framing as the virtio transport carries it:
/// a request is `le32 header` + parameters, a response `le32 header` (the
/// request's, echoed unchanged with its token) + `le32 status` + return
/// values; every field little-endian.

/// The 32-bit message header: message id bits 7:0, type 9:8, protocol id
/// 17:10, token 27:18; bits 31:28 are reserved and must be 0.
public struct SCMIHeader: RawRepresentable, Equatable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(protocol protocolID: SCMIProtocolID, message: UInt8, type: UInt8 = 0, token: UInt16 = 0) {
        rawValue = UInt32(message) | UInt32(type & 0x3) << 8 | UInt32(protocolID.rawValue) << 10 | UInt32(token & 0x3FF) << 18
    }

    public var messageID: UInt8 { UInt8(truncatingIfNeeded: rawValue) }
    /// 0 command, 2 delayed response, 3 notification.
    public var type: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) & 0x3 }
    public var protocolID: SCMIProtocolID { SCMIProtocolID(rawValue: UInt8(truncatingIfNeeded: rawValue >> 10)) }
    public var token: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 18) & 0x3FF }
    public var reservedBits: UInt32 { rawValue >> 28 }

    public var description: String {
        "protocol 0x\(String(protocolID.rawValue, radix: 16)) message 0x\(String(messageID, radix: 16)) type \(type) token \(token)"
    }
}

/// An SCMI protocol number (an open set: agents ask about protocols this
/// platform does not have).
public struct SCMIProtocolID: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The corresponding C constant is `SCMI_PROTOCOL_BASE`.
    public static let base = Self(rawValue: 0x10)
    /// The corresponding C constant is `SCMI_PROTOCOL_PERF`.
    public static let performance = Self(rawValue: 0x13)
}

/// SCMI status codes (DEN0056 "Status codes"; Linux `scmi_to_linux_errno`).
public enum SCMIStatus: Int32, CaseIterable, Equatable, Sendable, CustomStringConvertible {
    case success = 0
    case notSupported = -1
    case invalidParameters = -2
    case denied = -3
    case notFound = -4
    case outOfRange = -5
    case busy = -6
    case communicationsError = -7
    case genericError = -8
    case hardwareError = -9
    case protocolError = -10

    public var description: String {
        switch self {
        case .success: return "SUCCESS"
        case .notSupported: return "NOT_SUPPORTED"
        case .invalidParameters: return "INVALID_PARAMETERS"
        case .denied: return "DENIED"
        case .notFound: return "NOT_FOUND"
        case .outOfRange: return "OUT_OF_RANGE"
        case .busy: return "BUSY"
        case .communicationsError: return "COMMS_ERROR"
        case .genericError: return "GENERIC_ERROR"
        case .hardwareError: return "HARDWARE_ERROR"
        case .protocolError: return "PROTOCOL_ERROR"
        }
    }

    /// Index into per-status counters (0...10).
    public var counterIndex: Int { Int(-rawValue) }
}

/// Message ids common to every protocol (Linux `enum scmi_common_cmd`).
enum SCMICommonMessage {
    static let protocolVersion: UInt8 = 0x0
    static let protocolAttributes: UInt8 = 0x1
    static let protocolMessageAttributes: UInt8 = 0x2
    static let negotiateProtocolVersion: UInt8 = 0x10
}

/// The parameters of one request, read with bounds checks: a read past the
/// end or leftover bytes make the message malformed (PROTOCOL_ERROR).
struct SCMIParameters {
    let bytes: UnsafeRawBufferPointer

    /// The number of 32-bit parameters; nil unless the length is a whole number of them.
    var wordCount: Int? { bytes.count % 4 == 0 ? bytes.count / 4 : nil }

    func word(_ index: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
    }
}

/// Writes a response into the transport's buffer: the echoed header, the
/// status and the return values. `fits` tells a handler whether its values
/// fit; nothing is written past the buffer.
struct SCMIResponseWriter {
    let buffer: UnsafeMutableRawBufferPointer
    private(set) var length = 0

    init(buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    /// Room for return values after header and status.
    var valueCapacity: Int { max(0, buffer.count - 8) }

    /// Header and status; false when even those do not fit.
    mutating func begin(_ header: SCMIHeader, _ status: SCMIStatus) -> Bool {
        length = 0
        guard buffer.count >= 8 else { return false }
        put(header.rawValue)
        put(UInt32(bitPattern: status.rawValue))
        return true
    }

    mutating func put(_ value: UInt32) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: length, as: UInt32.self)
        length += 4
    }

    mutating func put16(_ value: UInt16) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: length, as: UInt16.self)
        length += 2
    }

    mutating func put8(_ value: UInt8) {
        buffer[length] = value
        length += 1
    }

    /// A NUL-padded fixed-size string field (`count` bytes, the last always NUL).
    mutating func putString(_ bytes: [UInt8], count: Int) {
        for index in 0..<count { buffer[length + index] = index < min(bytes.count, count - 1) ? bytes[index] : 0 }
        length += count
    }
}
