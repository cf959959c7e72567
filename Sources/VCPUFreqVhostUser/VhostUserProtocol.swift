/// Numbers of the vhost-user protocol (QEMU docs/interop/vhost-user.rst) and
/// of the virtio feature bits a back-end negotiates. Open value sets are
/// structs with static members: front-ends send request codes this back-end
/// has never heard of, and those must decode to something it can refuse.

/// A vhost-user request code (the header's `request` field).
public struct VhostUserRequestCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The corresponding C constant is `VHOST_USER_GET_FEATURES`.
    public static let getFeatures = Self(rawValue: 1)
    /// The corresponding C constant is `VHOST_USER_SET_FEATURES`.
    public static let setFeatures = Self(rawValue: 2)
    /// The corresponding C constant is `VHOST_USER_SET_OWNER`.
    public static let setOwner = Self(rawValue: 3)
    /// The corresponding C constant is `VHOST_USER_RESET_OWNER`.
    public static let resetOwner = Self(rawValue: 4)
    /// The corresponding C constant is `VHOST_USER_SET_MEM_TABLE`.
    public static let setMemTable = Self(rawValue: 5)
    /// The corresponding C constant is `VHOST_USER_SET_LOG_BASE`.
    public static let setLogBase = Self(rawValue: 6)
    /// The corresponding C constant is `VHOST_USER_SET_LOG_FD`.
    public static let setLogFD = Self(rawValue: 7)
    /// The corresponding C constant is `VHOST_USER_SET_VRING_NUM`.
    public static let setVringNum = Self(rawValue: 8)
    /// The corresponding C constant is `VHOST_USER_SET_VRING_ADDR`.
    public static let setVringAddr = Self(rawValue: 9)
    /// The corresponding C constant is `VHOST_USER_SET_VRING_BASE`.
    public static let setVringBase = Self(rawValue: 10)
    /// The corresponding C constant is `VHOST_USER_GET_VRING_BASE`.
    public static let getVringBase = Self(rawValue: 11)
    /// The corresponding C constant is `VHOST_USER_SET_VRING_KICK`.
    public static let setVringKick = Self(rawValue: 12)
    /// The corresponding C constant is `VHOST_USER_SET_VRING_CALL`.
    public static let setVringCall = Self(rawValue: 13)
    /// The corresponding C constant is `VHOST_USER_SET_VRING_ERR`.
    public static let setVringErr = Self(rawValue: 14)
    /// The corresponding C constant is `VHOST_USER_GET_PROTOCOL_FEATURES`.
    public static let getProtocolFeatures = Self(rawValue: 15)
    /// The corresponding C constant is `VHOST_USER_SET_PROTOCOL_FEATURES`.
    public static let setProtocolFeatures = Self(rawValue: 16)
    /// The corresponding C constant is `VHOST_USER_GET_QUEUE_NUM`.
    public static let getQueueNum = Self(rawValue: 17)
    /// The corresponding C constant is `VHOST_USER_SET_VRING_ENABLE`.
    public static let setVringEnable = Self(rawValue: 18)
    /// The corresponding C constant is `VHOST_USER_GET_CONFIG`.
    public static let getConfig = Self(rawValue: 24)
    /// The corresponding C constant is `VHOST_USER_GET_MAX_MEM_SLOTS`.
    public static let getMaxMemSlots = Self(rawValue: 36)

    public var description: String {
        switch self {
        case .getFeatures: return "GET_FEATURES"
        case .setFeatures: return "SET_FEATURES"
        case .setOwner: return "SET_OWNER"
        case .resetOwner: return "RESET_OWNER"
        case .setMemTable: return "SET_MEM_TABLE"
        case .setLogBase: return "SET_LOG_BASE"
        case .setLogFD: return "SET_LOG_FD"
        case .setVringNum: return "SET_VRING_NUM"
        case .setVringAddr: return "SET_VRING_ADDR"
        case .setVringBase: return "SET_VRING_BASE"
        case .getVringBase: return "GET_VRING_BASE"
        case .setVringKick: return "SET_VRING_KICK"
        case .setVringCall: return "SET_VRING_CALL"
        case .setVringErr: return "SET_VRING_ERR"
        case .getProtocolFeatures: return "GET_PROTOCOL_FEATURES"
        case .setProtocolFeatures: return "SET_PROTOCOL_FEATURES"
        case .getQueueNum: return "GET_QUEUE_NUM"
        case .setVringEnable: return "SET_VRING_ENABLE"
        case .getConfig: return "GET_CONFIG"
        case .getMaxMemSlots: return "GET_MAX_MEM_SLOTS"
        default: return "request \(rawValue)"
        }
    }
}

/// Virtio device feature bits a vhost-user back-end offers in GET_FEATURES.
public struct VirtioFeatures: OptionSet, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The corresponding C constant is `VIRTIO_RING_F_INDIRECT_DESC` (bit 28).
    public static let indirectDescriptors = Self(rawValue: 1 << 28)
    /// The corresponding C constant is `VIRTIO_RING_F_EVENT_IDX` (bit 29).
    public static let eventIndex = Self(rawValue: 1 << 29)
    /// The corresponding C constant is `VHOST_USER_F_PROTOCOL_FEATURES` (bit 30):
    /// the back-end speaks GET/SET_PROTOCOL_FEATURES and SET_VRING_ENABLE.
    public static let protocolFeatures = Self(rawValue: 1 << 30)
    /// The corresponding C constant is `VIRTIO_F_VERSION_1` (bit 32):
    /// little-endian, non-legacy rings.
    public static let version1 = Self(rawValue: 1 << 32)

    /// Device-specific bits live below 24; a device passes its own.
    public static func device(bit: Int) -> Self {
        precondition((0..<24).contains(bit), "device feature bits are 0...23")
        return Self(rawValue: 1 << UInt64(bit))
    }
}

/// vhost-user protocol feature bits (GET/SET_PROTOCOL_FEATURES).
public struct VhostUserProtocolFeatures: OptionSet, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The corresponding C constant is `VHOST_USER_PROTOCOL_F_MQ`: GET_QUEUE_NUM.
    /// The spec asks every back-end to offer it, even with a fixed queue count.
    public static let multipleQueues = Self(rawValue: 1 << 0)
    /// The corresponding C constant is `VHOST_USER_PROTOCOL_F_REPLY_ACK`.
    public static let replyAck = Self(rawValue: 1 << 3)
}

/// Limits of this back-end, each a bound on input the front-end controls.
public enum VhostUserLimits {
    /// Bytes of the header: `u32 request; u32 flags; u32 size`.
    public static let headerSize = 12
    /// Largest payload accepted. The largest message this back-end handles
    /// is SET_MEM_TABLE with 8 regions (8 + 8 × 32 = 264 bytes); the spec's
    /// largest (GET/SET_CONFIG) is 12 + 256. A bigger `size` is a framing
    /// error, so a peer cannot make the daemon buffer more.
    public static let maximumPayload = 4096
    /// Memory regions of SET_MEM_TABLE (`VHOST_MEMORY_BASELINE_NREGIONS`),
    /// and so the most descriptors one message may carry.
    public static let maximumRegions = 8
    /// Largest queue size accepted in SET_VRING_NUM (the split ring's own
    /// limit is 32768); a device may ask for less.
    public static let maximumQueueSize: UInt16 = 32768
}
