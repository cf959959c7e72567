/// The 12-byte header of every vhost-user message, in host byte order
/// (the protocol is host-native; every host this runs on is little-endian).
public struct VhostUserHeader: Equatable, Sendable {
    public var request: VhostUserRequestCode
    public var flags: UInt32
    /// Payload bytes after the header.
    public var size: UInt32

    /// Version 1 in bits 0-1 (the only version there is).
    public static let version: UInt32 = 0x1
    /// Set on every reply from the back-end.
    public static let replyFlag: UInt32 = 1 << 2
    /// The front-end wants an acknowledgement (VHOST_USER_PROTOCOL_F_REPLY_ACK).
    public static let needReplyFlag: UInt32 = 1 << 3

    public init(request: VhostUserRequestCode, flags: UInt32, size: UInt32) {
        self.request = request
        self.flags = flags
        self.size = size
    }

    /// Decodes and checks a header: version 1, not a reply, a payload size
    /// this back-end accepts. `bytes` must hold at least 12 bytes.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(VhostUserError) -> VhostUserHeader {
        precondition(bytes.count >= VhostUserLimits.headerSize, "a vhost-user header is 12 bytes")
        let header = VhostUserHeader(
            request: VhostUserRequestCode(rawValue: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
            flags: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
            size: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard header.flags & 0x3 == version, header.flags & replyFlag == 0 else { throw .badFlags(header.flags) }
        guard header.size <= VhostUserLimits.maximumPayload else {
            throw .payloadTooLarge(request: header.request, size: header.size)
        }
        return header
    }

    public var needsReply: Bool { flags & Self.needReplyFlag != 0 }
}

/// `struct vhost_vring_addr` of SET_VRING_ADDR: the rings' addresses in the
/// front-end's own address space (user addresses, not guest-physical).
public struct VringAddresses: Equatable, Sendable {
    public var index: UInt32
    public var flags: UInt32
    public var descriptorTable: UInt64
    public var usedRing: UInt64
    public var availableRing: UInt64
    public var log: UInt64

    /// The corresponding C constant is `VHOST_VRING_F_LOG`: dirty logging (live migration), not supported.
    public static let logFlag: UInt32 = 1

    public init(index: UInt32, flags: UInt32 = 0, descriptorTable: UInt64, usedRing: UInt64, availableRing: UInt64, log: UInt64 = 0) {
        self.index = index
        self.flags = flags
        self.descriptorTable = descriptorTable
        self.usedRing = usedRing
        self.availableRing = availableRing
        self.log = log
    }
}

/// One region of SET_MEM_TABLE; its file descriptor travels beside the message.
public struct VhostUserMemoryRegion: Equatable, Sendable {
    public var guestAddress: UInt64
    public var size: UInt64
    /// Where the front-end has the region mapped (what ring addresses refer to).
    public var userAddress: UInt64
    /// Offset of the region within its file.
    public var mmapOffset: UInt64

    public init(guestAddress: UInt64, size: UInt64, userAddress: UInt64, mmapOffset: UInt64) {
        self.guestAddress = guestAddress
        self.size = size
        self.userAddress = userAddress
        self.mmapOffset = mmapOffset
    }
}

/// A decoded front-end message. Descriptors are counted by the caller (they
/// arrive as ancillary data); the back-end checks the count per request.
public enum VhostUserRequest: Equatable, Sendable {
    case getFeatures
    case setFeatures(UInt64)
    case setOwner
    case resetOwner
    case setMemoryTable([VhostUserMemoryRegion])
    case setVringNum(index: UInt32, size: UInt32)
    case setVringAddress(VringAddresses)
    case setVringBase(index: UInt32, base: UInt32)
    case getVringBase(index: UInt32)
    /// SET_VRING_KICK / CALL / ERR: `hasDescriptor` false when bit 8 (`VHOST_USER_VRING_NOFD_MASK`) is set.
    case setVringKick(index: UInt32, hasDescriptor: Bool)
    case setVringCall(index: UInt32, hasDescriptor: Bool)
    case setVringError(index: UInt32, hasDescriptor: Bool)
    case getProtocolFeatures
    case setProtocolFeatures(UInt64)
    case getQueueNum
    case setVringEnable(index: UInt32, enabled: Bool)
    case getMaxMemorySlots
    /// Any other request code (refused by the back-end).
    case other(VhostUserRequestCode)

    /// Decodes the payload of `header.request`. Every size is checked
    /// against the request's layout; no field is trusted beyond its bytes.
    public static func decode(header: VhostUserHeader, payload: UnsafeRawBufferPointer) throws(VhostUserError) -> VhostUserRequest {
        var reader = PayloadReader(request: header.request, bytes: payload)
        let request: VhostUserRequest
        switch header.request {
        case .getFeatures: request = .getFeatures
        case .setFeatures: request = .setFeatures(try reader.u64())
        case .setOwner: request = .setOwner
        case .resetOwner: request = .resetOwner
        case .setMemTable:
            let count = try reader.u32()
            _ = try reader.u32()  // padding
            guard (1...UInt32(VhostUserLimits.maximumRegions)).contains(count) else {
                throw .badMemoryTable("\(count) regions; 1...\(VhostUserLimits.maximumRegions) allowed")
            }
            // The front-end may send the fixed 8-entry array or only `count`
            // entries; the regions beyond `count` are ignored either way.
            guard payload.count >= 8 + Int(count) * 32 else {
                throw .badPayloadSize(request: header.request, size: payload.count, expected: "\(8 + Int(count) * 32) or more")
            }
            var regions: [VhostUserMemoryRegion] = []
            regions.reserveCapacity(Int(count))
            for _ in 0..<count {
                regions.append(VhostUserMemoryRegion(
                    guestAddress: try reader.u64(), size: try reader.u64(), userAddress: try reader.u64(),
                    mmapOffset: try reader.u64()))
            }
            return .setMemoryTable(regions)
        case .setVringNum:
            request = .setVringNum(index: try reader.u32(), size: try reader.u32())
        case .setVringAddr:
            request = .setVringAddress(VringAddresses(
                index: try reader.u32(), flags: try reader.u32(), descriptorTable: try reader.u64(),
                usedRing: try reader.u64(), availableRing: try reader.u64(), log: try reader.u64()))
        case .setVringBase:
            request = .setVringBase(index: try reader.u32(), base: try reader.u32())
        case .getVringBase:
            // `struct vhost_vring_state`: index and an ignored num.
            let index = try reader.u32()
            _ = try reader.u32()
            request = .getVringBase(index: index)
        case .setVringKick, .setVringCall, .setVringErr:
            let value = try reader.u64()
            // Bits 0-7 index, bit 8 no-fd; the rest must be zero.
            guard value & ~0x1FF == 0 else {
                throw .badPayloadSize(request: header.request, size: payload.count, expected: "a u64 with only bits 0-8 set")
            }
            let index = UInt32(value & 0xFF), hasDescriptor = value & 0x100 == 0
            switch header.request {
            case .setVringKick: request = .setVringKick(index: index, hasDescriptor: hasDescriptor)
            case .setVringCall: request = .setVringCall(index: index, hasDescriptor: hasDescriptor)
            default: request = .setVringError(index: index, hasDescriptor: hasDescriptor)
            }
        case .getProtocolFeatures: request = .getProtocolFeatures
        case .setProtocolFeatures: request = .setProtocolFeatures(try reader.u64())
        case .getQueueNum: request = .getQueueNum
        case .setVringEnable:
            let index = try reader.u32()
            let enabled = try reader.u32()
            guard enabled <= 1 else {
                throw .badPayloadSize(request: header.request, size: payload.count, expected: "num 0 or 1")
            }
            request = .setVringEnable(index: index, enabled: enabled == 1)
        case .getMaxMemSlots: request = .getMaxMemorySlots
        default: return .other(header.request)
        }
        try reader.expectEnd()
        return request
    }

    /// How many file descriptors must come with this request.
    public var expectedDescriptors: Int {
        switch self {
        case .setMemoryTable(let regions): return regions.count
        case .setVringKick(_, let has), .setVringCall(_, let has), .setVringError(_, let has): return has ? 1 : 0
        default: return 0
        }
    }
}

/// Bounds-checked little-endian reads of one payload; every read that would
/// run past the end is `VhostUserError.badPayloadSize`.
struct PayloadReader {
    let request: VhostUserRequestCode
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0

    init(request: VhostUserRequestCode, bytes: UnsafeRawBufferPointer) {
        self.request = request
        self.bytes = bytes
    }

    private mutating func take<T: FixedWidthInteger>(_: T.Type) throws(VhostUserError) -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - position >= size else {
            throw .badPayloadSize(request: request, size: bytes.count, expected: "at least \(position + size)")
        }
        defer { position += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    mutating func u32() throws(VhostUserError) -> UInt32 { try take(UInt32.self) }
    mutating func u64() throws(VhostUserError) -> UInt64 { try take(UInt64.self) }

    func expectEnd() throws(VhostUserError) {
        guard position == bytes.count else {
            throw .badPayloadSize(request: request, size: bytes.count, expected: "\(position)")
        }
    }
}

/// Encodes the back-end's replies into a buffer it reuses.
public enum VhostUserReply {
    /// A reply carrying one u64 (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, REPLY_ACK).
    public static func u64(_ request: VhostUserRequestCode, _ value: UInt64, into bytes: inout [UInt8]) {
        header(request, size: 8, into: &bytes)
        append(value, to: &bytes)
    }

    /// A `struct vhost_vring_state` reply (GET_VRING_BASE).
    public static func vringState(_ request: VhostUserRequestCode, index: UInt32, num: UInt32, into bytes: inout [UInt8]) {
        header(request, size: 8, into: &bytes)
        append(index, to: &bytes)
        append(num, to: &bytes)
    }

    private static func header(_ request: VhostUserRequestCode, size: UInt32, into bytes: inout [UInt8]) {
        bytes.removeAll(keepingCapacity: true)
        append(request.rawValue, to: &bytes)
        append(VhostUserHeader.version | VhostUserHeader.replyFlag, to: &bytes)
        append(size, to: &bytes)
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// The front-end's side of the codec: what QEMU or crosvm sends. The
/// daemon never encodes a request; the tests, the benchmark and fuzzers
/// play the front-end with it.
extension VhostUserRequest {
    /// The header's request code of this message.
    public var code: VhostUserRequestCode {
        switch self {
        case .getFeatures: return .getFeatures
        case .setFeatures: return .setFeatures
        case .setOwner: return .setOwner
        case .resetOwner: return .resetOwner
        case .setMemoryTable: return .setMemTable
        case .setVringNum: return .setVringNum
        case .setVringAddress: return .setVringAddr
        case .setVringBase: return .setVringBase
        case .getVringBase: return .getVringBase
        case .setVringKick: return .setVringKick
        case .setVringCall: return .setVringCall
        case .setVringError: return .setVringErr
        case .getProtocolFeatures: return .getProtocolFeatures
        case .setProtocolFeatures: return .setProtocolFeatures
        case .getQueueNum: return .getQueueNum
        case .setVringEnable: return .setVringEnable
        case .getMaxMemorySlots: return .getMaxMemSlots
        case .other(let code): return code
        }
    }

    /// Header (version 1, plus `flags`) and payload, replacing `bytes`.
    /// SET_MEM_TABLE carries only its regions (QEMU sends all 8 slots; both are valid).
    public func encode(flags: UInt32 = 0, into bytes: inout [UInt8]) {
        var payload: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { payload.append(contentsOf: $0) } }
        func ring(_ index: UInt32, _ hasDescriptor: Bool) { put(UInt64(index & 0xFF) | (hasDescriptor ? 0 : 0x100)) }
        switch self {
        case .getFeatures, .setOwner, .resetOwner, .getProtocolFeatures, .getQueueNum, .getMaxMemorySlots, .other:
            break
        case .setFeatures(let value), .setProtocolFeatures(let value):
            put(value)
        case .setMemoryTable(let regions):
            put(UInt32(regions.count))
            put(UInt32(0))
            for region in regions {
                put(region.guestAddress)
                put(region.size)
                put(region.userAddress)
                put(region.mmapOffset)
            }
        case .setVringNum(let index, let size):
            put(index)
            put(size)
        case .setVringAddress(let addresses):
            put(addresses.index)
            put(addresses.flags)
            put(addresses.descriptorTable)
            put(addresses.usedRing)
            put(addresses.availableRing)
            put(addresses.log)
        case .setVringBase(let index, let base):
            put(index)
            put(base)
        case .getVringBase(let index):
            put(index)
            put(UInt32(0))
        case .setVringKick(let index, let has), .setVringCall(let index, let has), .setVringError(let index, let has):
            ring(index, has)
        case .setVringEnable(let index, let enabled):
            put(index)
            put(UInt32(enabled ? 1 : 0))
        }
        bytes.removeAll(keepingCapacity: true)
        withUnsafeBytes(of: code.rawValue.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: (VhostUserHeader.version | flags).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += payload
    }
}
