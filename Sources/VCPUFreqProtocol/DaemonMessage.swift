/// A message from the daemon to a VMM.
public enum DaemonMessage: Equatable, Sendable {
    case helloOK(HelloOK)
    case attachOK(AttachOK)
    /// Number of threads restored.
    case detachOK(restoredThreads: UInt32)
    /// The read value; `invalid` = 0 when the access was valid, else the
    /// device model's InvalidAccess code + 1 (the value is then the safe answer).
    case readOK(value: UInt64, invalid: UInt32)
    case writeOK(invalid: UInt32)
    /// Carries the shared page's descriptor (a memfd, or a BPF map then the
    /// mirror's memfd when there is a mirror): `SharedLayout.descriptorCount`.
    case sharedOK(SharedLayout)
    /// Carries `count` doorbell eventfds, for doorbells first...first+count-1.
    case doorbells(first: UInt32, count: UInt32)
    /// One chunk of the JSON status document.
    case statusOK(chunk: UInt32, chunks: UInt32, json: [UInt8])
    case error(code: ErrorCode, failedType: UInt16, message: String)

    public struct HelloOK: Equatable, Sendable {
        public var version: UInt16
        /// Features granted (SharedPageABI.Feature raw values).
        public var features: UInt32
        public var maximumVCPUs: UInt32
        public var daemonVersion: String
        public init(version: UInt16, features: UInt32, maximumVCPUs: UInt32, daemonVersion: String) {
            self.version = version
            self.features = features
            self.maximumVCPUs = maximumVCPUs
            self.daemonVersion = daemonVersion
        }
    }

    public struct AttachOK: Equatable, Sendable {
        public var vmID: UInt32
        public var vcpuCount: UInt32
        /// Guest-physical base of the device space (the upstream node's reg).
        public var baseAddress: UInt64
        /// The profile actually used.
        public var profile: String
        /// Human-readable actuator choice ("clamp=none latency=slice affinity=on").
        public var actuators: String
        public init(vmID: UInt32, vcpuCount: UInt32, baseAddress: UInt64, profile: String, actuators: String) {
            self.vmID = vmID
            self.vcpuCount = vcpuCount
            self.baseAddress = baseAddress
            self.profile = profile
            self.actuators = actuators
        }
    }

    /// Where things are in the memfd and in the guest's device space.
    public struct SharedLayout: Equatable, Sendable {
        /// Bytes of the memfd (with a BPF-map page: of the mirror's memfd; 0 without a mirror).
        public var memfdSize: UInt64
        /// Shared page region: offset in the memfd, size, device-space offset to map it at.
        public var pageOffset: UInt64
        public var pageSize: UInt64
        public var pageDeviceOffset: UInt64
        /// Read-only mirror of the upstream windows (size 0 when not requested).
        public var mirrorOffset: UInt64
        public var mirrorSize: UInt64
        public var mirrorDeviceOffset: UInt64
        /// Doorbell i is the 4-byte register at device offset doorbellDeviceOffset + i * doorbellStride.
        public var doorbellDeviceOffset: UInt64
        public var doorbellStride: UInt32
        public var doorbellCount: UInt32
        /// DOORBELLS messages that follow this one.
        public var doorbellMessages: UInt32
        /// What the page's descriptor is (`page_kind`, u32; unknown values are malformed).
        public var pageKind: SharedPageKind

        public init(
            memfdSize: UInt64, pageOffset: UInt64, pageSize: UInt64, pageDeviceOffset: UInt64,
            mirrorOffset: UInt64, mirrorSize: UInt64, mirrorDeviceOffset: UInt64,
            doorbellDeviceOffset: UInt64, doorbellStride: UInt32, doorbellCount: UInt32, doorbellMessages: UInt32,
            pageKind: SharedPageKind = .memfd
        ) {
            self.memfdSize = memfdSize
            self.pageOffset = pageOffset
            self.pageSize = pageSize
            self.pageDeviceOffset = pageDeviceOffset
            self.mirrorOffset = mirrorOffset
            self.mirrorSize = mirrorSize
            self.mirrorDeviceOffset = mirrorDeviceOffset
            self.doorbellDeviceOffset = doorbellDeviceOffset
            self.doorbellStride = doorbellStride
            self.doorbellCount = doorbellCount
            self.doorbellMessages = doorbellMessages
            self.pageKind = pageKind
        }

        /// Descriptors SHARED_OK carries: the memfd; or the BPF map, then the
        /// mirror's memfd when there is a mirror.
        public var descriptorCount: Int { pageKind == .bpfMap && mirrorSize > 0 ? 2 : 1 }
    }

    public var type: MessageType {
        switch self {
        case .helloOK: return .helloOK
        case .attachOK: return .attachOK
        case .detachOK: return .detachOK
        case .readOK: return .readOK
        case .writeOK: return .writeOK
        case .sharedOK: return .sharedOK
        case .doorbells: return .doorbells
        case .statusOK: return .statusOK
        case .error: return .error
        }
    }

    /// File descriptors that travel with this message.
    public var descriptorCount: Int {
        switch self {
        case .sharedOK(let layout): return layout.descriptorCount
        case .doorbells(_, let count): return Int(count)
        default: return 0
        }
    }

    /// Encodes this message (daemon side) into `writer`, replying to `id`.
    public func encode(id: UInt32, into writer: inout ByteWriter) {
        writer.begin(type, id: id)
        switch self {
        case .helloOK(let ok):
            writer.u16(ok.version)
            writer.u16(0)
            writer.u32(ok.features)
            writer.u32(ok.maximumVCPUs)
            writer.string(ok.daemonVersion)
        case .attachOK(let ok):
            writer.u32(ok.vmID)
            writer.u32(ok.vcpuCount)
            writer.u64(ok.baseAddress)
            writer.string(ok.profile)
            writer.string(ok.actuators)
        case .detachOK(let restored):
            writer.u32(restored)
        case .readOK(let value, let invalid):
            writer.u64(value)
            writer.u32(invalid)
            writer.u32(0)
        case .writeOK(let invalid):
            writer.u32(invalid)
            writer.u32(0)
        case .sharedOK(let layout):
            for value in [
                layout.memfdSize, layout.pageOffset, layout.pageSize, layout.pageDeviceOffset,
                layout.mirrorOffset, layout.mirrorSize, layout.mirrorDeviceOffset, layout.doorbellDeviceOffset,
            ] { writer.u64(value) }
            writer.u32(layout.doorbellStride)
            writer.u32(layout.doorbellCount)
            writer.u32(layout.doorbellMessages)
            writer.u32(layout.pageKind.rawValue)
        case .doorbells(let first, let count):
            writer.u32(first)
            writer.u32(count)
        case .statusOK(let chunk, let chunks, let json):
            writer.u32(chunk)
            writer.u32(chunks)
            writer.raw(json)
        case .error(let code, let failedType, let message):
            writer.u32(code.rawValue)
            writer.u16(failedType)
            writer.u16(0)
            writer.string(message)
        }
        writer.finish()
    }

    /// Decodes a daemon message (client side); never traps on any input.
    public static func decode(_ packet: UnsafeRawBufferPointer) throws(ProtocolViolation) -> (header: MessageHeader, message: DaemonMessage) {
        guard packet.count >= Wire.headerSize else {
            throw ProtocolViolation(.malformed, "\(packet.count)-byte packet is shorter than the header")
        }
        var reader = ByteReader(packet)
        let rawType = try reader.u16("type")
        let flags = MessageFlags(rawValue: try reader.u16("flags"))
        let length = try reader.u32("length")
        let id = try reader.u32("id")
        _ = try reader.u32("reserved")
        let header = MessageHeader(type: rawType, flags: flags, length: length, id: id)
        guard Int(length) == packet.count else {
            throw ProtocolViolation(.malformed, "header says \(length) bytes, packet has \(packet.count)")
        }
        guard let type = MessageType(rawValue: rawType), type.rawValue >= 0x80 else {
            throw ProtocolViolation(.unknownType, "unknown reply type 0x\(String(rawType, radix: 16))")
        }
        let message: DaemonMessage
        switch type {
        case .helloOK:
            let version = try reader.u16("version")
            _ = try reader.u16("reserved")
            let features = try reader.u32("features")
            let maximum = try reader.u32("max_vcpus")
            let name = try reader.string("daemon_version")
            message = .helloOK(HelloOK(version: version, features: features, maximumVCPUs: maximum, daemonVersion: name))
        case .attachOK:
            let vmID = try reader.u32("vm_id")
            let count = try reader.u32("vcpu_count")
            let base = try reader.u64("base_address")
            let profile = try reader.string("profile")
            let actuators = try reader.string("actuators")
            message = .attachOK(AttachOK(vmID: vmID, vcpuCount: count, baseAddress: base, profile: profile, actuators: actuators))
        case .detachOK:
            message = .detachOK(restoredThreads: try reader.u32("restored"))
        case .readOK:
            let value = try reader.u64("value")
            let invalid = try reader.u32("invalid")
            _ = try reader.u32("reserved")
            message = .readOK(value: value, invalid: invalid)
        case .writeOK:
            let invalid = try reader.u32("invalid")
            _ = try reader.u32("reserved")
            message = .writeOK(invalid: invalid)
        case .sharedOK:
            var values: [UInt64] = []
            for _ in 0..<8 { values.append(try reader.u64("layout")) }
            let stride = try reader.u32("doorbell_stride")
            let count = try reader.u32("doorbell_count")
            let messages = try reader.u32("doorbell_messages")
            let rawKind = try reader.u32("page_kind")
            guard let kind = SharedPageKind(rawValue: rawKind) else {
                throw ProtocolViolation(.malformed, "SHARED_OK page_kind \(rawKind) is not defined")
            }
            message = .sharedOK(SharedLayout(
                memfdSize: values[0], pageOffset: values[1], pageSize: values[2], pageDeviceOffset: values[3],
                mirrorOffset: values[4], mirrorSize: values[5], mirrorDeviceOffset: values[6],
                doorbellDeviceOffset: values[7], doorbellStride: stride, doorbellCount: count, doorbellMessages: messages,
                pageKind: kind))
        case .doorbells:
            let first = try reader.u32("first")
            let count = try reader.u32("count")
            message = .doorbells(first: first, count: count)
        case .statusOK:
            let chunk = try reader.u32("chunk")
            let chunks = try reader.u32("chunks")
            let start = reader.position
            message = .statusOK(chunk: chunk, chunks: chunks, json: Array(packet[start...]))
            return (header, message)
        case .error:
            let rawCode = try reader.u32("code")
            let failed = try reader.u16("failed_type")
            _ = try reader.u16("reserved")
            let text = try reader.string("message")
            message = .error(code: ErrorCode(rawValue: rawCode) ?? .malformed, failedType: failed, message: text)
        default:
            throw ProtocolViolation(.unknownType, "message type \(type) is sent to the daemon, not by it")
        }
        try reader.expectEnd(after: type)
        return (header, message)
    }
}
