/// The back-end side of the vhost-user protocol for one front-end
/// connection, as a pure state machine: it takes decoded messages and says
/// what to reply and what the caller must do with the descriptors and rings
/// (`VhostUserOutcome`). It never maps memory, reads a socket or knows the
/// device behind the queues.
///
/// Ring states (vhost-user.rst "Ring states"): a ring is stopped until
/// SET_VRING_KICK, started after it, and stopped again by GET_VRING_BASE.
/// With VHOST_USER_F_PROTOCOL_FEATURES negotiated a ring also starts
/// disabled until SET_VRING_ENABLE 1; without it, enabled. Buffers are
/// processed only on a ring that is started and enabled.
public struct VhostUserBackend: Sendable {
    /// What the device behind the back-end offers.
    public struct Device: Sendable {
        /// Virtqueues (virtio-scmi: 2, cmdq and eventq).
        public var queueCount: Int
        /// Largest queue size accepted (a power of two).
        public var maximumQueueSize: UInt16
        /// Device feature bits offered (device bits and VERSION_1); the back-end
        /// adds VHOST_USER_F_PROTOCOL_FEATURES itself.
        public var features: VirtioFeatures
        public var protocolFeatures: VhostUserProtocolFeatures

        public init(queueCount: Int, maximumQueueSize: UInt16, features: VirtioFeatures, protocolFeatures: VhostUserProtocolFeatures = .multipleQueues) {
            precondition(queueCount > 0 && queueCount <= 256, "a device has 1...256 queues")
            precondition(maximumQueueSize > 0 && maximumQueueSize & (maximumQueueSize - 1) == 0, "the queue size limit is a power of two")
            self.queueCount = queueCount
            self.maximumQueueSize = maximumQueueSize
            self.features = features
            self.protocolFeatures = protocolFeatures
        }
    }

    /// One ring as the front-end configured it.
    public struct Ring: Equatable, Sendable {
        public var size: UInt16 = 0
        /// Guest-physical addresses (translated from the front-end's user addresses).
        public var descriptorTable: UInt64?
        public var availableRing: UInt64?
        public var usedRing: UInt64?
        /// The vring base: where consumption starts.
        public var base: UInt16 = 0
        /// SET_VRING_KICK arrived (and GET_VRING_BASE did not stop it since).
        public var started = false
        public var enabled = false
        public var hasKick = false
        public var hasCall = false

        public init() {}

        /// Started, enabled and fully configured: buffers may be served.
        public var isServing: Bool { started && enabled && layout != nil }

        public var layout: VirtqueueLayout? {
            guard size > 0, let descriptorTable, let availableRing, let usedRing else { return nil }
            return VirtqueueLayout(size: size, descriptorTable: descriptorTable, availableRing: availableRing, usedRing: usedRing)
        }
    }

    public let device: Device
    /// Features offered in GET_FEATURES.
    public var offeredFeatures: UInt64 { device.features.rawValue | VirtioFeatures.protocolFeatures.rawValue }
    public private(set) var ackedFeatures: UInt64 = 0
    public private(set) var ackedProtocolFeatures: UInt64 = 0
    public private(set) var owned = false
    public private(set) var rings: [Ring]
    /// The memory table last set (without its mappings, which the caller owns).
    public private(set) var memoryRegions: [VhostUserMemoryRegion] = []

    public init(device: Device) {
        self.device = device
        rings = Array(repeating: Ring(), count: device.queueCount)
    }

    /// VHOST_USER_F_PROTOCOL_FEATURES is in the acked features: rings start disabled.
    public var protocolFeaturesNegotiated: Bool { ackedFeatures & VirtioFeatures.protocolFeatures.rawValue != 0 }

    public var indirectDescriptorsNegotiated: Bool { ackedFeatures & VirtioFeatures.indirectDescriptors.rawValue != 0 }

    /// What one message asks of the caller beyond the reply.
    public enum Effect: Equatable, Sendable {
        case none
        /// Map the message's descriptors as these regions (descriptor i is region i)
        /// and replace the memory table; every ring must be rebuilt on it.
        case replaceMemory([VhostUserMemoryRegion])
        /// Watch the message's descriptor as this queue's kick (nil: none, the front-end polls).
        case kick(queue: Int, hasDescriptor: Bool)
        /// Signal the message's descriptor when this queue has used buffers (nil: none).
        case call(queue: Int, hasDescriptor: Bool)
        /// The message's descriptor (if any) reports this queue's errors; it may be closed.
        case error(queue: Int, hasDescriptor: Bool)
        /// The queue is stopped: stop watching its kick; `base` was replied.
        case stop(queue: Int)
        /// The queue was enabled or disabled.
        case enable(queue: Int, enabled: Bool)
        /// RESET_OWNER: every queue stopped, the memory table dropped.
        case reset
    }

    /// A reply the caller must send before anything else.
    public enum Reply: Equatable, Sendable {
        case u64(VhostUserRequestCode, UInt64)
        case vringState(VhostUserRequestCode, index: UInt32, num: UInt32)

        public func encode(into bytes: inout [UInt8]) {
            switch self {
            case .u64(let request, let value): VhostUserReply.u64(request, value, into: &bytes)
            case .vringState(let request, let index, let num): VhostUserReply.vringState(request, index: index, num: num, into: &bytes)
            }
        }
    }

    public struct Outcome: Equatable, Sendable {
        public var reply: Reply?
        public var effect: Effect
        public init(reply: Reply? = nil, effect: Effect = .none) {
            self.reply = reply
            self.effect = effect
        }
    }

    /// Handles one message that came with `descriptorCount` descriptors.
    /// `translate` turns a front-end user address range into a guest-physical
    /// address (nil: outside the memory table); the caller answers it from
    /// its `GuestMemoryTable`. A thrown error means: close the connection.
    ///
    /// REPLY_ACK (vhost-user.rst): when it was negotiated before this message
    /// and the message sets need_reply, a message without a reply of its own
    /// is acknowledged with a u64 0 once handled. A failure is not acked
    /// with a non-zero value: it closes the connection.
    public mutating func handle(
        _ request: VhostUserRequest, header: VhostUserHeader, descriptorCount: Int,
        translate: (_ userAddress: UInt64, _ count: Int) -> UInt64?
    ) throws(VhostUserError) -> Outcome {
        let acknowledge = header.needsReply && ackedProtocolFeatures & VhostUserProtocolFeatures.replyAck.rawValue != 0
        var outcome = try perform(request, header: header, descriptorCount: descriptorCount, translate: translate)
        if acknowledge, outcome.reply == nil { outcome.reply = .u64(header.request, 0) }
        return outcome
    }

    private mutating func perform(
        _ request: VhostUserRequest, header: VhostUserHeader, descriptorCount: Int,
        translate: (_ userAddress: UInt64, _ count: Int) -> UInt64?
    ) throws(VhostUserError) -> Outcome {
        guard descriptorCount == request.expectedDescriptors else {
            throw .badDescriptorCount(request: header.request, count: descriptorCount, expected: request.expectedDescriptors)
        }
        func queue(_ index: UInt32) throws(VhostUserError) -> Int {
            guard index < UInt32(rings.count) else { throw .noSuchQueue(request: header.request, index: index) }
            return Int(index)
        }
        switch request {
        case .getFeatures:
            return Outcome(reply: .u64(header.request, offeredFeatures))
        case .setFeatures(let features):
            guard features & ~offeredFeatures == 0 else { throw .unofferedFeatures(features & ~offeredFeatures) }
            ackedFeatures = features
            return Outcome()
        case .getProtocolFeatures:
            return Outcome(reply: .u64(header.request, device.protocolFeatures.rawValue))
        case .setProtocolFeatures(let features):
            guard features & ~device.protocolFeatures.rawValue == 0 else {
                throw .unofferedProtocolFeatures(features & ~device.protocolFeatures.rawValue)
            }
            ackedProtocolFeatures = features
            return Outcome()
        case .getQueueNum:
            guard device.protocolFeatures.contains(.multipleQueues) else { throw .unsupportedRequest(header.request) }
            return Outcome(reply: .u64(header.request, UInt64(device.queueCount)))
        case .getMaxMemorySlots:
            throw .unsupportedRequest(header.request)
        case .setOwner:
            owned = true
            return Outcome()
        case .resetOwner:
            owned = false
            ackedFeatures = 0
            ackedProtocolFeatures = 0
            rings = Array(repeating: Ring(), count: device.queueCount)
            memoryRegions = []
            return Outcome(effect: .reset)
        case .setMemoryTable(let regions):
            memoryRegions = regions
            return Outcome(effect: .replaceMemory(regions))
        case .setVringNum(let index, let size):
            let q = try queue(index)
            guard size > 0, size <= UInt32(device.maximumQueueSize), size & (size - 1) == 0 else {
                throw .badQueueSize(index: index, size: size)
            }
            rings[q].size = UInt16(size)
            return Outcome()
        case .setVringAddress(let addresses):
            let q = try queue(addresses.index)
            guard !memoryRegions.isEmpty else { throw .noMemoryTable(header.request) }
            guard addresses.flags & VringAddresses.logFlag == 0 else {
                throw .badRingAddress(index: addresses.index, "dirty logging (VHOST_VRING_F_LOG) is not supported")
            }
            // Sizes are checked again when the ring is built; here only that each start is in the table.
            guard let descriptors = translate(addresses.descriptorTable, 1),
                let available = translate(addresses.availableRing, 1), let used = translate(addresses.usedRing, 1)
            else {
                throw .badRingAddress(index: addresses.index, "an address is outside the memory table")
            }
            rings[q].descriptorTable = descriptors
            rings[q].availableRing = available
            rings[q].usedRing = used
            return Outcome()
        case .setVringBase(let index, let base):
            let q = try queue(index)
            guard base <= UInt32(UInt16.max) else { throw .badQueueBase(index: index, base: base) }
            rings[q].base = UInt16(base)
            return Outcome()
        case .getVringBase(let index):
            let q = try queue(index)
            rings[q].started = false
            rings[q].hasKick = false
            return Outcome(reply: .vringState(header.request, index: index, num: UInt32(rings[q].base)), effect: .stop(queue: q))
        case .setVringKick(let index, let hasDescriptor):
            let q = try queue(index)
            rings[q].hasKick = hasDescriptor
            rings[q].started = true
            if !protocolFeaturesNegotiated { rings[q].enabled = true }
            return Outcome(effect: .kick(queue: q, hasDescriptor: hasDescriptor))
        case .setVringCall(let index, let hasDescriptor):
            let q = try queue(index)
            rings[q].hasCall = hasDescriptor
            return Outcome(effect: .call(queue: q, hasDescriptor: hasDescriptor))
        case .setVringError(let index, let hasDescriptor):
            return Outcome(effect: .error(queue: try queue(index), hasDescriptor: hasDescriptor))
        case .setVringEnable(let index, let enabled):
            let q = try queue(index)
            guard protocolFeaturesNegotiated else { throw .enableWithoutProtocolFeatures }
            rings[q].enabled = enabled
            return Outcome(effect: .enable(queue: q, enabled: enabled))
        case .other(let code):
            throw .unsupportedRequest(code)
        }
    }

    /// The caller consumed buffers of queue `index` up to `nextAvailable`:
    /// GET_VRING_BASE must return it.
    public mutating func recordProgress(queue index: Int, nextAvailable: UInt16) {
        guard rings.indices.contains(index) else { return }
        rings[index].base = nextAvailable
    }
}
