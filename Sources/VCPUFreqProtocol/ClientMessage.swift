/// A message from a VMM to the daemon.
public enum ClientMessage: Equatable, Sendable {
    /// First message on a connection: protocol version range and features.
    case hello(Hello)
    /// Attach a VM: its name, the profile it runs, the host TID of each vCPU thread.
    case attach(Attach)
    /// Detach the VM: its threads are restored.
    case detach
    /// A guest read of the device space (a forwarded MMIO exit); synchronous reply.
    case read(RegisterRead)
    /// A guest write of the device space; posted (no reply) unless the SYNC flag is set.
    case write(RegisterWrite)
    /// Ask for the shared page, the read-only mirror and the doorbell eventfds.
    case mapShared(MapSharedRequest)
    /// Ask for the daemon's status (JSON, chunked).
    case status(StatusRequest)

    public struct Hello: Equatable, Sendable {
        public var minimumVersion: UInt16
        public var maximumVersion: UInt16
        /// Feature bits the client would like (SharedPageABI.Feature raw values).
        public var features: UInt32
        /// Free text for the logs ("crosvm 120", "vcpufreq reference VMM").
        public var clientName: String
        public init(minimumVersion: UInt16 = Wire.version, maximumVersion: UInt16 = Wire.version, features: UInt32 = 0, clientName: String) {
            self.minimumVersion = minimumVersion
            self.maximumVersion = maximumVersion
            self.features = features
            self.clientName = clientName
        }
    }

    public struct Attach: Equatable, Sendable {
        public var vmName: String
        /// VM profile of the topology file; empty = the first profile.
        public var profile: String
        /// Host TID of vCPU i's thread.
        public var threadIDs: [Int32]
        public init(vmName: String, profile: String = "", threadIDs: [Int32]) {
            self.vmName = vmName
            self.profile = profile
            self.threadIDs = threadIDs
        }
    }

    public struct RegisterRead: Equatable, Sendable {
        /// vCPU that executed the access.
        public var vcpu: UInt32
        /// Bytes (the device model answers bad widths safely).
        public var width: UInt32
        /// Device-space offset (GPA minus the VM's base address).
        public var offset: UInt64
        public init(vcpu: UInt32, width: UInt32, offset: UInt64) {
            self.vcpu = vcpu
            self.width = width
            self.offset = offset
        }
    }

    public struct RegisterWrite: Equatable, Sendable {
        public var vcpu: UInt32
        public var width: UInt32
        public var offset: UInt64
        public var value: UInt64
        public var sync: Bool
        public init(vcpu: UInt32, width: UInt32, offset: UInt64, value: UInt64, sync: Bool = false) {
            self.vcpu = vcpu
            self.width = width
            self.offset = offset
            self.value = value
            self.sync = sync
        }
    }

    public struct MapSharedRequest: Equatable, Sendable {
        public var flags: UInt32
        public init(flags: UInt32) { self.flags = flags }
        /// Map the read-only mirror of the upstream windows too.
        public static let mirror: UInt32 = 1 << 0
        /// Send one doorbell eventfd per vCPU.
        public static let doorbells: UInt32 = 1 << 1
        public static let known: UInt32 = mirror | doorbells
    }

    public struct StatusRequest: Equatable, Sendable {
        public var flags: UInt32
        public init(flags: UInt32 = 0) { self.flags = flags }
        /// Every VM of the daemon, not only this connection's.
        public static let allVMs: UInt32 = 1 << 0
        public static let known: UInt32 = allVMs
    }

    public var type: MessageType {
        switch self {
        case .hello: return .hello
        case .attach: return .attach
        case .detach: return .detach
        case .read: return .read
        case .write: return .write
        case .mapShared: return .mapShared
        case .status: return .status
        }
    }
}

extension ClientMessage {
    /// Decodes one received packet. Checks the header (length equals the
    /// packet size, reserved field zero, known type, only defined flags) and
    /// every field; never traps on any input.
    public static func decode(_ packet: UnsafeRawBufferPointer) throws(ProtocolViolation) -> (header: MessageHeader, message: ClientMessage) {
        var reader = ByteReader(packet)
        guard packet.count >= Wire.headerSize else {
            throw ProtocolViolation(.malformed, "\(packet.count)-byte packet is shorter than the 16-byte header")
        }
        let rawType = try reader.u16("type")
        let flags = MessageFlags(rawValue: try reader.u16("flags"))
        let length = try reader.u32("length")
        let id = try reader.u32("id")
        let reserved = try reader.u32("reserved")
        let header = MessageHeader(type: rawType, flags: flags, length: length, id: id)
        guard Int(length) == packet.count else {
            throw ProtocolViolation(.malformed, "header says \(length) bytes, packet has \(packet.count)")
        }
        guard reserved == 0 else { throw ProtocolViolation(.malformed, "reserved header field is \(reserved), not 0") }
        guard let type = MessageType(rawValue: rawType), type.rawValue < 0x80 else {
            throw ProtocolViolation(.unknownType, "unknown message type 0x\(String(rawType, radix: 16))")
        }
        if type != .write && !flags.isEmpty || !MessageFlags.sync.isSuperset(of: flags) {
            throw ProtocolViolation(.malformed, "flags 0x\(String(flags.rawValue, radix: 16)) are not defined for \(type)")
        }
        let message: ClientMessage
        switch type {
        case .hello:
            let magic = try reader.u32("magic")
            guard magic == Wire.magic else {
                throw ProtocolViolation(.malformed, "HELLO magic 0x\(String(magic, radix: 16)) is not 0x\(String(Wire.magic, radix: 16))")
            }
            let minimum = try reader.u16("min_version")
            let maximum = try reader.u16("max_version")
            guard minimum <= maximum else { throw ProtocolViolation(.malformed, "min_version \(minimum) > max_version \(maximum)") }
            let features = try reader.u32("features")
            let name = try reader.string("client_name")
            message = .hello(Hello(minimumVersion: minimum, maximumVersion: maximum, features: features, clientName: name))
        case .attach:
            let vmName = try reader.string("vm_name", maximum: Wire.maximumNameLength)
            guard !vmName.isEmpty else { throw ProtocolViolation(.malformed, "vm_name is empty") }
            let profile = try reader.string("profile", maximum: Wire.maximumNameLength)
            let count = Int(try reader.u32("vcpu_count"))
            let attachFlags = try reader.u32("flags")
            guard attachFlags == 0 else { throw ProtocolViolation(.malformed, "ATTACH flags 0x\(String(attachFlags, radix: 16)) are not defined") }
            guard (1...Wire.maximumVCPUs).contains(count) else {
                throw ProtocolViolation(.malformed, "vcpu_count \(count) is outside 1...\(Wire.maximumVCPUs)")
            }
            guard reader.remaining == count * 4 else {
                throw ProtocolViolation(.malformed, "\(reader.remaining) bytes of TIDs for \(count) vCPUs")
            }
            var tids: [Int32] = []
            tids.reserveCapacity(count)
            for _ in 0..<count {
                let tid = try reader.u32("tid")
                guard tid > 0, tid <= UInt32(Int32.max) else { throw ProtocolViolation(.malformed, "TID \(tid) is not a thread id") }
                tids.append(Int32(tid))
            }
            message = .attach(Attach(vmName: vmName, profile: profile, threadIDs: tids))
        case .detach:
            message = .detach
        case .read:
            let vcpu = try reader.u32("vcpu")
            let width = try reader.u32("width")
            let offset = try reader.u64("offset")
            message = .read(RegisterRead(vcpu: vcpu, width: width, offset: offset))
        case .write:
            let vcpu = try reader.u32("vcpu")
            let width = try reader.u32("width")
            let offset = try reader.u64("offset")
            let value = try reader.u64("value")
            message = .write(RegisterWrite(vcpu: vcpu, width: width, offset: offset, value: value, sync: flags.contains(.sync)))
        case .mapShared:
            let mapFlags = try reader.u32("flags")
            guard mapFlags & ~MapSharedRequest.known == 0 else {
                throw ProtocolViolation(.malformed, "MAP_SHARED flags 0x\(String(mapFlags, radix: 16)) are not defined")
            }
            message = .mapShared(MapSharedRequest(flags: mapFlags))
        case .status:
            let statusFlags = try reader.u32("flags")
            guard statusFlags & ~StatusRequest.known == 0 else {
                throw ProtocolViolation(.malformed, "STATUS flags 0x\(String(statusFlags, radix: 16)) are not defined")
            }
            message = .status(StatusRequest(flags: statusFlags))
        default:
            throw ProtocolViolation(.unknownType, "message type \(type) is sent by the daemon, not to it")
        }
        try reader.expectEnd(after: type)
        return (header, message)
    }

    /// Encodes this message (client side) into `writer`.
    public func encode(id: UInt32, into writer: inout ByteWriter) {
        switch self {
        case .hello(let hello):
            writer.begin(.hello, id: id)
            writer.u32(Wire.magic)
            writer.u16(hello.minimumVersion)
            writer.u16(hello.maximumVersion)
            writer.u32(hello.features)
            writer.string(hello.clientName)
        case .attach(let attach):
            writer.begin(.attach, id: id)
            writer.string(attach.vmName)
            writer.string(attach.profile)
            writer.u32(UInt32(attach.threadIDs.count))
            writer.u32(0)
            for tid in attach.threadIDs { writer.u32(UInt32(bitPattern: tid)) }
        case .detach:
            writer.begin(.detach, id: id)
        case .read(let read):
            writer.begin(.read, id: id)
            writer.u32(read.vcpu)
            writer.u32(read.width)
            writer.u64(read.offset)
        case .write(let write):
            writer.begin(.write, id: id, flags: write.sync ? .sync : [])
            writer.u32(write.vcpu)
            writer.u32(write.width)
            writer.u64(write.offset)
            writer.u64(write.value)
        case .mapShared(let request):
            writer.begin(.mapShared, id: id)
            writer.u32(request.flags)
        case .status(let request):
            writer.begin(.status, id: id)
            writer.u32(request.flags)
        }
        writer.finish()
    }
}
