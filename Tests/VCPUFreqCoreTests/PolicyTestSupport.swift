@testable import VCPUFreqCore

/// A small deterministic PRNG (SplitMix64) so property tests replay exactly.
struct PolicyPRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum PolicyFixtures {
    /// The phone VM with every vCPU allowed on all eight host CPUs: the
    /// little and mid vCPUs then run on CPUs faster than the ones they model
    /// (`isSlowerThanHost`), the big ones do not.
    static func floatingPhone(tableMode: TableMode = .table) -> Topology {
        var topology = SampleTopologies.phone(tableMode: tableMode)
        topology.vms[0].pinCPUs = Array(repeating: CPUList(0...7), count: 8)
        return topology
    }

    /// Every sample topology in both table modes, plus the floating phone.
    static func allTopologies() -> [Topology] {
        TableMode.allCases.flatMap { SampleTopologies.all(tableMode: $0) + [floatingPhone(tableMode: $0)] }
    }

    /// A model of the topology's first VM with these settings.
    static func model(
        _ topology: Topology, utilCap: Int = 1024, headroom: HeadroomCompensation = .none, pin: Bool = true,
        _ configure: (inout PolicySettings) -> Void = { _ in }
    ) throws -> VMModel {
        var topology = topology
        topology.vms[0].utilCap = utilCap
        topology.vms[0].headroom = headroom
        topology.vms[0].pin = pin
        configure(&topology.vms[0].policy)
        return try topology.model()
    }

    /// Settings with every dynamic switched off, so a test sees one mechanism at a time.
    static func plain(_ settings: inout PolicySettings) {
        settings.hysteresis = 0
        settings.minimumIntervalMicroseconds = 0
        settings.boostHoldMilliseconds = 0
        settings.idleDecayMilliseconds = 0
    }

    /// An engine for the topology with plain settings, then `configure`, with
    /// the attach-time changes already drained.
    static func engine(
        _ topology: Topology, utilCap: Int = 1024, headroom: HeadroomCompensation = .none, pin: Bool = true,
        _ configure: (inout PolicySettings) -> Void = { _ in }
    ) throws -> PolicyEngine {
        var engine = PolicyEngine(vm: try model(topology, utilCap: utilCap, headroom: headroom, pin: pin) {
            plain(&$0)
            configure(&$0)
        })
        _ = engine.drained()
        return engine
    }
}

/// One reported change.
struct PolicyChange: Equatable, CustomStringConvertible {
    var vcpu: Int
    var hint: HostHint
    var description: String { "vCPU \(vcpu): \(hint)" }
}

extension PolicyEngine {
    /// The changes `drainChanges` reports, as an array.
    mutating func drained() -> [PolicyChange] {
        var changes: [PolicyChange] = []
        drainChanges { changes.append(PolicyChange(vcpu: $0, hint: $1)) }
        return changes
    }

    /// util_min of every vCPU.
    var utilMins: [UInt16] { (0..<vcpuCount).map { appliedHint(vcpu: $0).utilMin } }
    /// util_max of every vCPU.
    var utilMaxes: [UInt16] { (0..<vcpuCount).map { appliedHint(vcpu: $0).utilMax } }

    /// Submits a perf request.
    mutating func perf(_ vcpu: Int, _ khz: UInt32, at now: UInt64, boost: Bool = false, latency: Bool? = nil) {
        submit(GuestRequest(vcpu: vcpu, performanceKHz: khz, latencySensitive: latency, boost: boost, source: .upstreamRegister), now: now)
    }

    /// Submits a util hint.
    mutating func util(_ vcpu: Int, _ utilization: UInt32, at now: UInt64, boost: Bool = false, latency: Bool? = nil) {
        let source: RequestSource = latency == nil && !boost ? .utilHintRegister : .sharedPage
        submit(GuestRequest(vcpu: vcpu, utilization: utilization, latencySensitive: latency, boost: boost, source: source), now: now)
    }
}
