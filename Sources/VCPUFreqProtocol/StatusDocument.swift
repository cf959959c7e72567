/// The JSON document STATUS returns (and `vcpufreq status --json` prints).
/// Field names are snake_case in JSON (the encoder converts).
public struct StatusDocument: Codable, Equatable, Sendable {
    public var daemon: Daemon
    public var vms: [VM]

    public init(daemon: Daemon, vms: [VM]) {
        self.daemon = daemon
        self.vms = vms
    }

    public struct Daemon: Codable, Equatable, Sendable {
        public var version: String
        public var pid: Int32
        public var uptimeSeconds: Double
        /// `clamp=none latency=slice affinity=on`
        public var actuators: String
        /// Why preferred actuators were passed over.
        public var actuatorNotes: [String]
        /// Per facet: "available: ..." / "unavailable: ...".
        public var capabilities: [String: String]
        /// BPF host truth: "loaded" or why not.
        public var bpf: String
        public var dryRun: Bool
        public var connections: Int
        public var vcpus: Int
        /// Threads restored at start from a killed daemon's journal.
        public var recoveredThreads: Int
        /// How often the daemon's loop woke up, and for what (nil from
        /// daemons before it was counted).
        public var wakeups: Wakeups? = nil

        public init(
            version: String, pid: Int32, uptimeSeconds: Double, actuators: String, actuatorNotes: [String],
            capabilities: [String: String], bpf: String, dryRun: Bool, connections: Int, vcpus: Int, recoveredThreads: Int
        ) {
            self.version = version
            self.pid = pid
            self.uptimeSeconds = uptimeSeconds
            self.actuators = actuators
            self.actuatorNotes = actuatorNotes
            self.capabilities = capabilities
            self.bpf = bpf
            self.dryRun = dryRun
            self.connections = connections
            self.vcpus = vcpus
            self.recoveredThreads = recoveredThreads
        }
    }

    /// The daemon loop's wake-ups since it started: `total` returns of
    /// epoll_wait with at least one event, and the events by source (one
    /// wake-up may carry several). A request that a host BPF program
    /// consumes from a BPF-map page costs none of them.
    public struct Wakeups: Codable, Equatable, Sendable {
        public var total: UInt64
        /// Its timer: policy deadlines, polls of kick-suppressed VMs, frequency refresh, metrics.
        public var timer: UInt64
        /// Doorbell eventfds (kicks).
        public var doorbells: UInt64
        /// VMM and status client sockets (messages, replies draining).
        public var connections: UInt64
        /// New connections and signals.
        public var other: UInt64

        public init(total: UInt64 = 0, timer: UInt64 = 0, doorbells: UInt64 = 0, connections: UInt64 = 0, other: UInt64 = 0) {
            self.total = total
            self.timer = timer
            self.doorbells = doorbells
            self.connections = connections
            self.other = other
        }
    }

    public struct VM: Codable, Equatable, Sendable {
        public var id: UInt32
        public var name: String
        public var profile: String
        public var peerPID: Int32
        public var peerUID: UInt32
        public var actuators: String
        public var kickMode: String
        /// Kicks are suppressed now (the daemon polls).
        public var polling: Bool
        public var sharedMapped: Bool
        public var mirrorMapped: Bool
        /// What the shared page is once mapped: "bpf-map" (host BPF programs
        /// read it in place) or "memfd"; nil before MAP_SHARED.
        public var sharedPage: String? = nil
        /// Why a VM got a memfd page rather than a BPF map (nil otherwise).
        public var sharedPageNote: String? = nil
        public var counters: Counters
        /// Invalid guest accesses by kind (docs/abi.md names).
        public var invalidAccesses: [String: UInt64]
        public var vcpus: [VCPU]

        /// Spelled so that the JSON key (`peer_pid`, what convertToSnakeCase
        /// makes of `peerPID`) decodes again with convertFromSnakeCase, which
        /// makes `peerPid` of it: without these, `VCPUFreqClient.status()`
        /// failed on every document with a VM. Decoding also accepts
        /// `peerPID` (StatusDocument+Decoding.swift).
        enum CodingKeys: String, CodingKey {
            case id, name, profile, actuators, kickMode, polling, sharedMapped, mirrorMapped, sharedPage, sharedPageNote, counters
            case invalidAccesses, vcpus
            case peerPID = "peerPid"
            case peerUID = "peerUid"
        }

        public init(
            id: UInt32, name: String, profile: String, peerPID: Int32, peerUID: UInt32, actuators: String, kickMode: String,
            polling: Bool, sharedMapped: Bool, mirrorMapped: Bool, counters: Counters, invalidAccesses: [String: UInt64],
            vcpus: [VCPU]
        ) {
            self.id = id
            self.name = name
            self.profile = profile
            self.peerPID = peerPID
            self.peerUID = peerUID
            self.actuators = actuators
            self.kickMode = kickMode
            self.polling = polling
            self.sharedMapped = sharedMapped
            self.mirrorMapped = mirrorMapped
            self.counters = counters
            self.invalidAccesses = invalidAccesses
            self.vcpus = vcpus
        }
    }

    public struct Counters: Codable, Equatable, Sendable {
        public var accesses: UInt64
        public var requests: UInt64
        public var kicks: UInt64
        public var polls: UInt64
        public var invalidAccesses: UInt64
        public var actuationErrors: UInt64
        public var threadsGone: UInt64
        public var restores: UInt64

        public init(
            accesses: UInt64, requests: UInt64, kicks: UInt64, polls: UInt64, invalidAccesses: UInt64,
            actuationErrors: UInt64, threadsGone: UInt64, restores: UInt64
        ) {
            self.accesses = accesses
            self.requests = requests
            self.kicks = kicks
            self.polls = polls
            self.invalidAccesses = invalidAccesses
            self.actuationErrors = actuationErrors
            self.threadsGone = threadsGone
            self.restores = restores
        }
    }

    public struct VCPU: Codable, Equatable, Sendable {
        public var index: Int
        public var tid: Int32
        public var domain: UInt32
        /// Last request: "set_perf 1803000 kHz", "util_hint 512", "shared_page util 600 boost latency".
        public var lastRequest: String?
        public var utilMin: UInt16?
        public var utilMax: UInt16?
        public var latency: String?
        public var cpus: String?
        /// cur_perf the guest reads, kHz.
        public var currentPerformanceKHz: UInt32
        public var capped: Bool
        public var requests: UInt64
        public var kicks: UInt64
        public var hintsApplied: UInt64
        public var invalidAccesses: UInt64
        public var actuationErrors: UInt64
        /// What the host scheduler did with the thread (BPF); nil when the
        /// daemon has no BPF programs loaded (`daemon.bpf` says why).
        public var hostTruth: HostTruth? = nil

        public init(
            index: Int, tid: Int32, domain: UInt32, lastRequest: String?, utilMin: UInt16?, utilMax: UInt16?,
            latency: String?, cpus: String?, currentPerformanceKHz: UInt32, capped: Bool, requests: UInt64,
            kicks: UInt64, hintsApplied: UInt64, invalidAccesses: UInt64, actuationErrors: UInt64
        ) {
            self.index = index
            self.tid = tid
            self.domain = domain
            self.lastRequest = lastRequest
            self.utilMin = utilMin
            self.utilMax = utilMax
            self.latency = latency
            self.cpus = cpus
            self.currentPerformanceKHz = currentPerformanceKHz
            self.capped = capped
            self.requests = requests
            self.kicks = kicks
            self.hintsApplied = hintsApplied
            self.invalidAccesses = invalidAccesses
            self.actuationErrors = actuationErrors
        }
    }
}
