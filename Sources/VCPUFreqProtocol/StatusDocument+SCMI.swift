/// STATUS of the SCMI devices (vhost-user back-ends of `vcpufreq serve
/// --vhost-user-scmi`): per listening socket in `daemon`, per device in its VM.
extension StatusDocument {
    /// One `--vhost-user-scmi` socket.
    public struct VhostUserSocket: Codable, Equatable, Sendable {
        public var path: String
        public var profile: String
        public var vmName: String
        /// A front-end is connected now.
        public var connected: Bool
        public var connections: UInt64
        /// Why the last connection ended, when the daemon ended it (a broken
        /// ring, a protocol error); nil after a clean disconnect or none yet.
        public var lastFailure: String?

        public init(path: String, profile: String, vmName: String, connected: Bool, connections: UInt64, lastFailure: String?) {
            self.path = path
            self.profile = profile
            self.vmName = vmName
            self.connected = connected
            self.connections = connections
            self.lastFailure = lastFailure
        }
    }

    /// The SCMI device of a VM served over vhost-user.
    public struct SCMIDevice: Codable, Equatable, Sendable {
        public var socket: String
        /// Virtio features the front-end acked.
        public var ackedFeatures: UInt64
        /// Each virtqueue: started and enabled (serving).
        public var queuesServing: [Bool]
        public var messages: UInt64
        public var errors: UInt64
        /// Non-SUCCESS statuses answered, by SCMI name.
        public var errorStatuses: [String: UInt64]
        public var levelSets: UInt64
        public var levelGets: UInt64
        public var limitsSets: UInt64
        public var shortBuffers: UInt64
        public var kicks: UInt64
        /// The guest memory files can shrink (not sealed): a front-end that
        /// truncated one could make the daemon fault.
        public var unsealedMemory: Bool
        /// vCPUs whose thread the daemon has not found (yet).
        public var missingThreads: [Int]
        public var domains: [Domain]

        public init(
            socket: String, ackedFeatures: UInt64, queuesServing: [Bool], messages: UInt64, errors: UInt64,
            errorStatuses: [String: UInt64], levelSets: UInt64, levelGets: UInt64, limitsSets: UInt64, shortBuffers: UInt64,
            kicks: UInt64, unsealedMemory: Bool, missingThreads: [Int], domains: [Domain]
        ) {
            self.socket = socket
            self.ackedFeatures = ackedFeatures
            self.queuesServing = queuesServing
            self.messages = messages
            self.errors = errors
            self.errorStatuses = errorStatuses
            self.levelSets = levelSets
            self.levelGets = levelGets
            self.limitsSets = limitsSets
            self.shortBuffers = shortBuffers
            self.kicks = kicks
            self.unsealedMemory = unsealedMemory
            self.missingThreads = missingThreads
            self.domains = domains
        }
    }

    /// One SCMI performance domain as the guest set it.
    public struct SCMIDomain: Codable, Equatable, Sendable {
        public var id: Int
        public var name: String
        public var vcpus: [Int]
        public var levelsKHz: [UInt32]
        /// The guest's last LEVEL_SET (nil: none yet).
        public var requestedKHz: UInt32?
        /// The level handed to the policy (the request within the limits).
        public var appliedKHz: UInt32?
        public var minimumKHz: UInt32
        public var maximumKHz: UInt32
        /// The highest level the operator's util_cap allows.
        public var capKHz: UInt32

        /// `levels_khz`, `requested_khz`, ... in JSON (what convertToSnakeCase
        /// makes of `levelsKhz`), and back with convertFromSnakeCase.
        enum CodingKeys: String, CodingKey {
            case id, name, vcpus
            case levelsKHz = "levelsKhz"
            case requestedKHz = "requestedKhz"
            case appliedKHz = "appliedKhz"
            case minimumKHz = "minimumKhz"
            case maximumKHz = "maximumKhz"
            case capKHz = "capKhz"
        }

        public init(
            id: Int, name: String, vcpus: [Int], levelsKHz: [UInt32], requestedKHz: UInt32?, appliedKHz: UInt32?,
            minimumKHz: UInt32, maximumKHz: UInt32, capKHz: UInt32
        ) {
            self.id = id
            self.name = name
            self.vcpus = vcpus
            self.levelsKHz = levelsKHz
            self.requestedKHz = requestedKHz
            self.appliedKHz = appliedKHz
            self.minimumKHz = minimumKHz
            self.maximumKHz = maximumKHz
            self.capKHz = capKHz
        }
    }
}

extension StatusDocument.SCMIDevice {
    public typealias Domain = StatusDocument.SCMIDomain
}
