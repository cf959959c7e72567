/// Protocol v1 between a VMM and the vcpufreq daemon: one message per
/// SOCK_SEQPACKET packet, little-endian, a 16-byte header then a body.
/// docs/protocol.md is the normative description; this file is its code.
public enum Wire {
    /// "VCPF" in memory order; the first field of HELLO.
    public static let magic: UInt32 = 0x4650_4356
    public static let version: UInt16 = 1
    public static let headerSize = 16
    /// Largest message a client may send (an ATTACH of 1024 vCPUs is ~4.3 KiB).
    /// The daemon receives into a buffer one byte larger, so a longer packet is
    /// seen as truncated and refused instead of silently cut.
    public static let maximumClientMessage = 8192
    /// Largest message the daemon sends (a STATUS_OK chunk).
    public static let maximumDaemonMessage = 65536
    /// Longest string field (names, messages), bytes of UTF-8.
    public static let maximumStringLength = 255
    /// Longest VM or profile name.
    public static let maximumNameLength = 64
    /// vCPUs a VM may attach (KVM_MAX_VCPUS here).
    public static let maximumVCPUs = 1024
    /// Doorbell eventfds per DOORBELLS message; the kernel's SCM_MAX_FD is 253.
    public static let doorbellsPerMessage = 240
}

/// HELLO feature bits that are about the protocol, not the shared page
/// (whose feature bits, `SharedPageABI.Feature`, are 0...15). A daemon that
/// does not know a bit leaves it out of HELLO_OK's grant, so a client asks
/// for it freely and looks at the grant.
public enum ProtocolFeature {
    /// The VMM can map a shared page that is a BPF map (SHARED_OK
    /// `page_kind` = `SharedPageKind.bpfMap`, its fd first, the mirror in a
    /// memfd of its own). Granted when the daemon runs the BPF programs.
    public static let bpfMapPage: UInt32 = 1 << 16
}

/// What SHARED_OK's page descriptor is (`page_kind`, the u32 that was
/// `reserved` in the first protocol v1 daemons: those always sent 0).
public enum SharedPageKind: UInt32, Sendable, CaseIterable {
    /// One memfd holds the page (at `page_offset`) and the mirror (at `mirror_offset`).
    case memfd = 0
    /// The page is an mmapable BPF array map (offset 0 of its fd) host BPF
    /// programs read in place; the mirror, when there is one, is a separate
    /// memfd (the message's second descriptor) of `memfd_size` bytes.
    case bpfMap = 1

    public var name: String {
        switch self {
        case .memfd: return "memfd"
        case .bpfMap: return "bpf-map"
        }
    }
}

/// Message types. Replies are the request type with bit 7 set.
public enum MessageType: UInt16, CaseIterable, Sendable {
    case hello = 0x01
    case attach = 0x02
    case detach = 0x03
    case read = 0x04
    case write = 0x05
    case mapShared = 0x06
    case status = 0x07

    case helloOK = 0x81
    case attachOK = 0x82
    case detachOK = 0x83
    case readOK = 0x84
    case writeOK = 0x85
    case sharedOK = 0x86
    case doorbells = 0x87
    case statusOK = 0x88
    case error = 0xFF
}

/// Header flags.
public struct MessageFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// WRITE: reply with WRITE_OK once the write is processed (used for
    /// perftbl_sel when the read-only mirror is mapped, so the next load of
    /// perftbl_rd sees the new entry).
    public static let sync = MessageFlags(rawValue: 1 << 0)
}

/// The 16-byte header.
public struct MessageHeader: Equatable, Sendable {
    public var type: UInt16
    public var flags: MessageFlags
    /// Total message length, header included; must equal the packet size.
    public var length: UInt32
    /// Chosen by the client, echoed by the daemon in replies and errors.
    public var id: UInt32

    public init(type: UInt16, flags: MessageFlags = [], length: UInt32, id: UInt32) {
        self.type = type
        self.flags = flags
        self.length = length
        self.id = id
    }
}

/// Error codes of ERROR replies. The connection is closed after every error
/// except `invalidState` answers to STATUS (none today) — see docs/protocol.md.
public enum ErrorCode: UInt32, CaseIterable, Sendable {
    /// Length, field or string check failed.
    case malformed = 1
    /// No common protocol version.
    case unsupportedVersion = 2
    /// Unknown message type.
    case unknownType = 3
    /// The message is not allowed now (e.g. READ before ATTACH, HELLO twice).
    case invalidState = 4
    /// A TID is not a thread of the connecting process.
    case foreignThread = 5
    /// No VM profile with that name, or its vCPU count differs.
    case unknownProfile = 6
    /// The peer's uid is not allowed to use the daemon.
    case permissionDenied = 7
    /// File descriptors arrived with a message that takes none.
    case unexpectedDescriptors = 8
    /// The daemon ran out of a resource (fds, memory, vCPU budget).
    case resources = 9
    /// A VM with this name is already attached.
    case duplicateVM = 10
}

/// A protocol violation, with the code sent to the peer.
public struct ProtocolViolation: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code): \(message)" }
}
