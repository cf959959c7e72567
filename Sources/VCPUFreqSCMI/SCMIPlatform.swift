import VCPUFreqCore

/// What the SCMI platform asks the daemon: the cached host performance of a
/// vCPU (LEVEL_GET), never a sysfs read.
public protocol SCMIPerformanceHost {
    /// The performance the host gives `vcpu` now, in kHz of its own table (`cur_perf`).
    func currentPerformanceKHz(vcpu: Int) -> UInt32
}

/// What one message did.
public struct SCMIOutcome: Equatable, Sendable {
    /// Bytes of the response written (0 when the buffer could not hold even header and status).
    public var responseLength: Int
    public var status: SCMIStatus
    /// A request for the VM's policy (LEVEL_SET, or LIMITS_SET moving the level).
    public var request: GuestRequest?

    public init(responseLength: Int, status: SCMIStatus, request: GuestRequest? = nil) {
        self.responseLength = responseLength
        self.status = status
        self.request = request
    }
}

/// Counters of one SCMI platform; wrapping arithmetic, no allocation.
public struct SCMICounters: Equatable, Sendable {
    public var messages: UInt64 = 0
    /// Per status, indexed by `SCMIStatus.counterIndex`.
    public var statuses: [UInt64] = Array(repeating: 0, count: SCMIStatus.allCases.count)
    public var levelSets: UInt64 = 0
    public var levelGets: UInt64 = 0
    public var limitsSets: UInt64 = 0
    /// Responses that did not fit the buffer the guest gave (none written, or COMMS_ERROR).
    public var shortBuffers: UInt64 = 0

    public subscript(status: SCMIStatus) -> UInt64 { statuses[status.counterIndex] }
    public var errors: UInt64 { messages &- statuses[SCMIStatus.success.counterIndex] }
}

/// The SCMI platform (the "SCP" side) one VM's guest talks to: the base
/// protocol and the performance protocol, over any transport that hands it
/// one request's bytes and a buffer for the response. It never sees a ring.
///
/// Pure and allocation-free per message: the domains are built at init and
/// the guest's levels and limits are fixed-size arrays. Every malformed or
/// unsupported message gets a status, never a trap (docs/scmi.md lists
/// which): an unknown protocol NOT_SUPPORTED, an unimplemented command of
/// a protocol NOT_FOUND, a message of the
/// wrong length or with reserved header bits PROTOCOL_ERROR, an unknown
/// domain NOT_FOUND, a level outside the domain's table OUT_OF_RANGE,
/// limits with min above max INVALID_PARAMETERS.
public struct SCMIPlatform: Sendable {
    /// Base protocol 2.0 and performance protocol 3.0 (12-byte level entries,
    /// extended names; Linux 6.x supports up to 4.0 and uses what we report).
    public static let baseVersion: UInt32 = 0x20000
    public static let performanceVersion: UInt32 = 0x30000
    public static let vendor = Array("vcpufreq".utf8)
    public static let subVendor = Array("virtio-scmi".utf8)
    /// 0.1.0 as `major << 16 | minor << 8 | patch`.
    public static let implementationVersion: UInt32 = 0x0000_0100
    /// The transport's return-value limit (Linux `VIRTIO_SCMI_MAX_MSG_SIZE`):
    /// no response carries more than this after its status.
    public static let maximumReturnBytes = 128
    /// DOMAIN_ATTRIBUTES flags: SET_LIMITS (31), SET_PERF_LEVEL (30), EXTENDED_NAMES (26).
    static let setLimitsFlag: UInt32 = 1 << 31, setLevelFlag: UInt32 = 1 << 30, extendedNamesFlag: UInt32 = 1 << 26
    static let performanceMessages: Set<UInt8> = [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xc]
    static let baseMessages: Set<UInt8> = [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7]

    public let domains: [SCMIPerformanceDomain]
    /// Per domain: the level the guest last set (index), nil before the first LEVEL_SET.
    public private(set) var requestedIndex: [Int?]
    /// Per domain: the guest's limits (indices); max never above the cap.
    public private(set) var minimumIndex: [Int]
    public private(set) var maximumIndex: [Int]
    /// Per domain: the level last handed to the policy (index).
    public private(set) var submittedIndex: [Int?]
    public private(set) var counters = SCMICounters()

    public init(domains: [SCMIPerformanceDomain]) {
        self.domains = domains
        requestedIndex = Array(repeating: nil, count: domains.count)
        minimumIndex = Array(repeating: 0, count: domains.count)
        maximumIndex = domains.map(\.capIndex)
        submittedIndex = Array(repeating: nil, count: domains.count)
    }

    public init(model: VMModel, host: HostTopology) {
        self.init(domains: SCMIPerformanceDomain.domains(of: model, host: host))
    }

    /// Serves one request. `request` holds the message's first bytes and
    /// `requestLength` its full length (a longer message than the copy is
    /// still answered, as malformed). The response goes into `response`.
    public mutating func handle(
        request: UnsafeRawBufferPointer, requestLength: Int, response: UnsafeMutableRawBufferPointer,
        host: some SCMIPerformanceHost
    ) -> SCMIOutcome {
        counters.messages &+= 1
        var writer = SCMIResponseWriter(buffer: response)
        let outcome: SCMIOutcome
        if request.count < 4 || requestLength < 4 {
            // No header to echo: answer with a zero header, which no pending
            // agent transfer matches (Linux drops it as unexpected).
            outcome = finish(&writer, SCMIHeader(rawValue: 0), .protocolError)
        } else {
            let header = SCMIHeader(rawValue: UInt32(littleEndian: request.loadUnaligned(as: UInt32.self)))
            let parameters = SCMIParameters(bytes: UnsafeRawBufferPointer(rebasing: request[4...]))
            if header.reservedBits != 0 || header.type != 0 || requestLength != request.count {
                outcome = finish(&writer, header, .protocolError)
            } else {
                outcome = dispatch(header, parameters, &writer, host)
            }
        }
        counters.statuses[outcome.status.counterIndex] &+= 1
        return outcome
    }

    private mutating func dispatch(
        _ header: SCMIHeader, _ parameters: SCMIParameters, _ writer: inout SCMIResponseWriter, _ host: some SCMIPerformanceHost
    ) -> SCMIOutcome {
        switch header.protocolID {
        case .base: return base(header, parameters, &writer)
        case .performance: return performance(header, parameters, &writer, host)
        default: return finish(&writer, header, .notSupported)
        }
    }

    /// Writes a status-only response (a non-SUCCESS response carries nothing
    /// else: virtio-scmi 5.17.6.1), or a SUCCESS whose values `values`
    /// writes in at most `bytes` bytes. A response that does not fit is
    /// COMMS_ERROR (or nothing, when not even the status fits).
    private mutating func finish(
        _ writer: inout SCMIResponseWriter, _ header: SCMIHeader, _ status: SCMIStatus, bytes: Int = 0,
        request: GuestRequest? = nil, _ values: (inout SCMIResponseWriter) -> Void = { _ in }
    ) -> SCMIOutcome {
        if status == .success && bytes > min(writer.valueCapacity, Self.maximumReturnBytes) {
            counters.shortBuffers &+= 1
            guard writer.begin(header, .communicationsError) else { return SCMIOutcome(responseLength: 0, status: .communicationsError) }
            return SCMIOutcome(responseLength: writer.length, status: .communicationsError)
        }
        guard writer.begin(header, status) else {
            counters.shortBuffers &+= 1
            return SCMIOutcome(responseLength: 0, status: status, request: status == .success ? request : nil)
        }
        if status == .success { values(&writer) }
        return SCMIOutcome(responseLength: writer.length, status: status, request: status == .success ? request : nil)
    }

    // MARK: Base protocol (0x10)

    private mutating func base(_ header: SCMIHeader, _ parameters: SCMIParameters, _ writer: inout SCMIResponseWriter) -> SCMIOutcome {
        let words = parameters.wordCount
        switch header.messageID {
        case SCMICommonMessage.protocolVersion:
            guard words == 0 else { return finish(&writer, header, .protocolError) }
            return finish(&writer, header, .success, bytes: 4) { $0.put(Self.baseVersion) }
        case SCMICommonMessage.protocolAttributes:
            guard words == 0 else { return finish(&writer, header, .protocolError) }
            // One protocol besides base; one agent (the guest's OSPM).
            return finish(&writer, header, .success, bytes: 4) {
                $0.put8(1)
                $0.put8(1)
                $0.put16(0)
            }
        case SCMICommonMessage.protocolMessageAttributes:
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            let message = parameters.word(0)
            guard message <= 0xFF, Self.baseMessages.contains(UInt8(message)) else { return finish(&writer, header, .notFound) }
            return finish(&writer, header, .success, bytes: 4) { $0.put(0) }
        case 0x3, 0x4:  // DISCOVER_VENDOR, DISCOVER_SUB_VENDOR
            guard words == 0 else { return finish(&writer, header, .protocolError) }
            let name = header.messageID == 0x3 ? Self.vendor : Self.subVendor
            return finish(&writer, header, .success, bytes: 16) { $0.putString(name, count: 16) }
        case 0x5:  // DISCOVER_IMPLEMENTATION_VERSION
            guard words == 0 else { return finish(&writer, header, .protocolError) }
            return finish(&writer, header, .success, bytes: 4) { $0.put(Self.implementationVersion) }
        case 0x6:  // DISCOVER_LIST_PROTOCOLS
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            let skip = parameters.word(0)
            guard skip <= 1 else { return finish(&writer, header, .invalidParameters) }
            let count: UInt32 = 1 - skip
            return finish(&writer, header, .success, bytes: count == 0 ? 4 : 8) { w in
                w.put(count)
                if count == 1 { w.put(UInt32(SCMIProtocolID.performance.rawValue)) }
            }
        case 0x7:  // DISCOVER_AGENT
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            let agent = parameters.word(0)
            let (id, name): (UInt32, [UInt8])
            switch agent {
            case 0: (id, name) = (0, Array("platform".utf8))
            case 1, 0xFFFF_FFFF: (id, name) = (1, Array("OSPM".utf8))  // the caller's own id
            default: return finish(&writer, header, .notFound)
            }
            return finish(&writer, header, .success, bytes: 20) { w in
                w.put(id)
                w.putString(name, count: 16)
            }
        default:
            // A command the protocol does not implement (BASE_NOTIFY_ERRORS, the permission commands, ...).
            return finish(&writer, header, .notFound)
        }
    }

    // MARK: Performance protocol (0x13)

    private mutating func performance(
        _ header: SCMIHeader, _ parameters: SCMIParameters, _ writer: inout SCMIResponseWriter, _ host: some SCMIPerformanceHost
    ) -> SCMIOutcome {
        let words = parameters.wordCount
        /// The domain named by parameter 0; nil (NOT_FOUND) when there is no such domain.
        func domain() -> Int? {
            let id = parameters.word(0)
            return id < UInt32(domains.count) ? Int(id) : nil
        }
        switch header.messageID {
        case SCMICommonMessage.protocolVersion:
            guard words == 0 else { return finish(&writer, header, .protocolError) }
            return finish(&writer, header, .success, bytes: 4) { $0.put(Self.performanceVersion) }
        case SCMICommonMessage.protocolAttributes:
            guard words == 0 else { return finish(&writer, header, .protocolError) }
            let count = UInt16(clamping: domains.count)
            // Power in an abstract scale (flags 0), no statistics shared memory.
            return finish(&writer, header, .success, bytes: 16) { w in
                w.put16(count)
                w.put16(0)
                w.put(0)
                w.put(0)
                w.put(0)
            }
        case SCMICommonMessage.protocolMessageAttributes:
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            let message = parameters.word(0)
            guard message <= 0xFF, Self.performanceMessages.contains(UInt8(message)) else { return finish(&writer, header, .notFound) }
            return finish(&writer, header, .success, bytes: 4) { $0.put(0) }
        case 0x3:  // DOMAIN_ATTRIBUTES
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            guard let d = domain() else { return finish(&writer, header, .notFound) }
            let entry = domains[d]
            var flags = Self.setLimitsFlag | Self.setLevelFlag
            if entry.name.count > 15 { flags |= Self.extendedNamesFlag }
            // Sustained level and frequency are the top level: the guest's
            // multiplier is 1000 (level = kHz) and no level is above the
            // sustained frequency, so none is a turbo/boost OPP.
            return finish(&writer, header, .success, bytes: 32) { w in
                w.put(flags)
                w.put(entry.rateLimitMicroseconds)
                w.put(entry.maximumKHz)
                w.put(entry.maximumKHz)
                w.putString(entry.name, count: 16)
            }
        case 0x4:  // DESCRIBE_LEVELS
            guard words == 2 else { return finish(&writer, header, .protocolError) }
            guard let d = domain() else { return finish(&writer, header, .notFound) }
            let levels = domains[d].levelsKHz
            let first = parameters.word(1)
            guard first < UInt32(levels.count) else { return finish(&writer, header, .invalidParameters) }
            // As many 12-byte entries as the guest's buffer (and the transport's limit) holds.
            let room = (min(writer.valueCapacity, Self.maximumReturnBytes) - 4) / 12
            guard room > 0 else { return finish(&writer, header, .success, bytes: Int.max) }
            let start = Int(first)
            let count = min(room, levels.count - start)
            let power = domains[d].power
            return finish(&writer, header, .success, bytes: 4 + 12 * count) { w in
                w.put16(UInt16(count))
                w.put16(UInt16(levels.count - start - count))
                for index in start..<(start + count) {
                    w.put(levels[index])
                    w.put(power[index])
                    w.put16(SCMIPerformanceDomain.transitionLatencyMicroseconds)
                    w.put16(0)
                }
            }
        case 0x5:  // LIMITS_SET: domain, range_max, range_min
            guard words == 3 else { return finish(&writer, header, .protocolError) }
            guard let d = domain() else { return finish(&writer, header, .notFound) }
            counters.limitsSets &+= 1
            let entry = domains[d]
            let maximum = parameters.word(1), minimum = parameters.word(2)
            // 0 leaves a limit as it is (performance protocol 3.0); both 0 says nothing.
            guard maximum != 0 || minimum != 0 else { return finish(&writer, header, .invalidParameters) }
            var newMaximum = maximumIndex[d], newMinimum = minimumIndex[d]
            if maximum != 0 {
                guard let index = entry.index(ofLevel: maximum) else { return finish(&writer, header, .outOfRange) }
                newMaximum = min(index, entry.capIndex)  // the operator's cap bounds the guest's limit
            }
            if minimum != 0 {
                guard let index = entry.index(ofLevel: minimum) else { return finish(&writer, header, .outOfRange) }
                newMinimum = index
            }
            if maximum != 0, minimum != 0, minimum > maximum { return finish(&writer, header, .invalidParameters) }
            newMinimum = min(newMinimum, newMaximum)
            maximumIndex[d] = newMaximum
            minimumIndex[d] = newMinimum
            return finish(&writer, header, .success, request: target(domain: d, fromLevelSet: false))
        case 0x6:  // LIMITS_GET
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            guard let d = domain() else { return finish(&writer, header, .notFound) }
            let levels = domains[d].levelsKHz, maximum = maximumIndex[d], minimum = minimumIndex[d]
            return finish(&writer, header, .success, bytes: 8) { w in
                w.put(levels[maximum])
                w.put(levels[minimum])
            }
        case 0x7:  // LEVEL_SET: domain, level
            guard words == 2 else { return finish(&writer, header, .protocolError) }
            guard let d = domain() else { return finish(&writer, header, .notFound) }
            counters.levelSets &+= 1
            guard let index = domains[d].index(ofLevel: parameters.word(1)) else { return finish(&writer, header, .outOfRange) }
            requestedIndex[d] = index
            return finish(&writer, header, .success, request: target(domain: d, fromLevelSet: true))
        case 0x8:  // LEVEL_GET
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            guard let d = domain() else { return finish(&writer, header, .notFound) }
            counters.levelGets &+= 1
            let level = host.currentPerformanceKHz(vcpu: domains[d].vcpus[0])
            return finish(&writer, header, .success, bytes: 4) { $0.put(level) }
        case 0xc:  // DOMAIN_NAME_GET
            guard words == 1 else { return finish(&writer, header, .protocolError) }
            guard let d = domain() else { return finish(&writer, header, .notFound) }
            let name = domains[d].name
            return finish(&writer, header, .success, bytes: 68) { w in
                w.put(0)
                w.putString(name, count: 64)
            }
        default:
            // NOTIFY_LIMITS/NOTIFY_LEVEL (no notifications), DESCRIBE_FASTCHANNEL
            // (virtio has none), NEGOTIATE_PROTOCOL_VERSION, anything else: a
            // command not implemented is NOT_FOUND (DEN0056; Arm's compliance
            // suite, test_d004, expects it; NOT_SUPPORTED is for a protocol).
            return finish(&writer, header, .notFound)
        }
    }

    /// The level the policy should get for domain `d`: the guest's level
    /// within its limits. nil when nothing changes (a limits change that
    /// leaves the level, or limits before any level that ask for nothing
    /// above the lowest); a LEVEL_SET always yields its request.
    private mutating func target(domain d: Int, fromLevelSet: Bool) -> GuestRequest? {
        let wanted = requestedIndex[d] ?? 0
        let index = min(max(wanted, minimumIndex[d]), maximumIndex[d])
        if !fromLevelSet {
            if submittedIndex[d] == index { return nil }
            if submittedIndex[d] == nil, requestedIndex[d] == nil, index == 0 { return nil }
        }
        submittedIndex[d] = index
        return GuestRequest(vcpu: domains[d].vcpus[0], performanceKHz: domains[d].levelsKHz[index], source: .scmi)
    }
}
