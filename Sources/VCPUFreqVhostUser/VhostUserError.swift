/// Why a vhost-user connection must be closed: the front-end broke the
/// protocol. Each case's description is the message the daemon logs.
public enum VhostUserError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The header's version bits are not 1, or it claims to be a reply.
    case badFlags(UInt32)
    /// The payload size is larger than any message this back-end accepts.
    case payloadTooLarge(request: VhostUserRequestCode, size: UInt32)
    /// The payload is not the size the request's layout has.
    case badPayloadSize(request: VhostUserRequestCode, size: Int, expected: String)
    /// The request is not one this back-end implements (or needs a feature it did not offer).
    case unsupportedRequest(VhostUserRequestCode)
    /// The message came with the wrong number of file descriptors.
    case badDescriptorCount(request: VhostUserRequestCode, count: Int, expected: Int)
    /// A virtqueue index beyond the device's queues.
    case noSuchQueue(request: VhostUserRequestCode, index: UInt32)
    /// SET_FEATURES acked bits the back-end never offered.
    case unofferedFeatures(UInt64)
    /// SET_PROTOCOL_FEATURES acked bits the back-end never offered.
    case unofferedProtocolFeatures(UInt64)
    /// SET_VRING_NUM: not a power of two in 1...the device's maximum.
    case badQueueSize(index: UInt32, size: UInt32)
    /// SET_VRING_BASE: an index beyond 16 bits (split rings count modulo 2^16).
    case badQueueBase(index: UInt32, base: UInt32)
    /// SET_MEM_TABLE: region count, a zero-sized, overflowing or overlapping region.
    case badMemoryTable(String)
    /// SET_VRING_ADDR: a ring address outside the memory table, or logging asked for.
    case badRingAddress(index: UInt32, String)
    /// A ring message that needs the memory table before it.
    case noMemoryTable(VhostUserRequestCode)
    /// SET_VRING_ENABLE without VHOST_USER_F_PROTOCOL_FEATURES negotiated.
    case enableWithoutProtocolFeatures
    /// The socket did not take a reply at once: the front-end stopped reading.
    case replyNotSent(VhostUserRequestCode)

    public var description: String {
        switch self {
        case .badFlags(let flags): return "header flags 0x\(String(flags, radix: 16)): version must be 1 and the reply bit clear"
        case .payloadTooLarge(let request, let size):
            return "\(request) payload of \(size) bytes; at most \(VhostUserLimits.maximumPayload)"
        case .badPayloadSize(let request, let size, let expected): return "\(request) payload of \(size) bytes; expected \(expected)"
        case .unsupportedRequest(let request): return "\(request) is not supported by this back-end"
        case .badDescriptorCount(let request, let count, let expected):
            return "\(request) came with \(count) file descriptors; expected \(expected)"
        case .noSuchQueue(let request, let index): return "\(request) for virtqueue \(index), which the device does not have"
        case .unofferedFeatures(let bits): return "SET_FEATURES acked bits 0x\(String(bits, radix: 16)) that were never offered"
        case .unofferedProtocolFeatures(let bits):
            return "SET_PROTOCOL_FEATURES acked bits 0x\(String(bits, radix: 16)) that were never offered"
        case .badQueueSize(let index, let size): return "SET_VRING_NUM \(size) for virtqueue \(index): not a power of two within the device's limit"
        case .badQueueBase(let index, let base): return "SET_VRING_BASE \(base) for virtqueue \(index): above 65535"
        case .badMemoryTable(let why): return "SET_MEM_TABLE: \(why)"
        case .badRingAddress(let index, let why): return "SET_VRING_ADDR for virtqueue \(index): \(why)"
        case .noMemoryTable(let request): return "\(request) before SET_MEM_TABLE"
        case .enableWithoutProtocolFeatures: return "SET_VRING_ENABLE without VHOST_USER_F_PROTOCOL_FEATURES negotiated"
        case .replyNotSent(let request): return "the reply to \(request) could not be sent: the front-end is not reading"
        }
    }
}
