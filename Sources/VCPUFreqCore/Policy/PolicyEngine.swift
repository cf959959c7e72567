/// Turns one VM's guest requests into the host hint of every vCPU thread.
///
/// The daemon owns one engine per VM and calls it on its hot path: `submit`
/// for every guest request, `advance(to:)` when the timer it armed for
/// `nextDeadline` fires, and `drainChanges` to learn which threads need a
/// syscall. All storage is allocated in `init`; a request costs O(domain
/// size) plus O(log vCPUs) per timer it moves, and never allocates (checked
/// with a counting malloc in a release build; debug builds call unspecialized
/// generics that do). Time is the caller's monotonic clock in nanoseconds:
/// the engine reads no clock.
///
/// From request to hint:
/// 1. The request maps to a utilization (`utilization(for:of:compensateHeadroom:)`).
/// 2. The vCPU's demand is that utilization, lifted to the boost utilization
///    while boosted, zeroed while idle, cut to the VM's cap (`VCPUPolicyState`).
/// 3. The guest's cpufreq policy is per performance domain and the driver
///    writes `set_perf` for the policy's first CPU only, so every vCPU of a
///    domain gets util_min = the highest demand in the domain.
/// 4. Hysteresis (`damped`) keeps small moves from being re-applied.
/// 5. util_max is util_min for a vCPU slower than the host CPUs it runs on
///    (hold it to the modeled speed; before its domain's first request, its
///    modeled full speed), else the cap. Latency is the VM's
///    latency hint when the vCPU is latency-sensitive, else `.none`.
///    Affinity is the vCPU's host CPUs when the VM pins, else nil.
/// 6. If the result differs from the applied hint, it is applied now, or, when
///    the vCPU's last change is younger than the minimum interval, held and
///    applied by `advance(to:)` when the interval ends.
///
/// Timers, one earliest deadline per vCPU in a heap: a held change
/// (`heldUntil`), the end of a boost (`boostUntil`), and idle decay
/// (`lastRequestAt + idleDecay`, only while the vCPU has something to decay).
public struct PolicyEngine: Sendable {
    /// The VM this engine serves.
    public let vm: VMModel
    let limits: PolicyLimits
    /// Per vCPU: requests, demand and timers.
    private var states: [VCPUPolicyState]
    /// Per vCPU: the hint the host should have now.
    private var applied: [HostHint]
    /// Per vCPU: the hint last handed out by `drainChanges` (nil: never).
    private var reported: [HostHint?]
    /// Per vCPU: its domain, an index into `members`.
    private let domainOf: [Int]
    /// vCPUs of each performance domain, ascending.
    private let members: [[Int]]
    /// Per vCPU: the utilization of its table maximum, within the cap (an
    /// extreme of the hysteresis dead band).
    private let fullSpeed: [UInt16]
    /// Per vCPU: `VCPUModel.isSlowerThanHost`.
    private let slower: [Bool]
    /// Per domain: a member has made a request. Until then a slower-than-host
    /// vCPU is held to its modeled full speed, not to util_min 0: attaching
    /// must not slow a guest that has not asked for anything yet.
    private var domainRequested: [Bool]
    /// Per vCPU: already in `dirtyList`.
    private var isDirty: [Bool]
    /// vCPUs whose applied hint changed since the last drain; the first
    /// `dirtyCount` entries are valid (capacity = vCPU count, never grows).
    private var dirtyList: [Int]
    private var dirtyCount = 0
    private var deadlines: DeadlineQueue
    /// Requests naming a vCPU the VM does not have (dropped).
    public private(set) var rejectedRequests: UInt64 = 0

    /// Sorting a dirty list longer than this costs more than scanning the
    /// per-vCPU flags of a VM (at most 1024 vCPUs) in order.
    private static let insertionSortLimit = 32

    public init(vm: VMModel) {
        self.vm = vm
        let limits = PolicyLimits(vm: vm)
        self.limits = limits
        let count = vm.vcpus.count
        states = Array(repeating: VCPUPolicyState(), count: count)
        // Domains as the model lists them, ignoring indices out of range or
        // seen twice; a vCPU in no domain gets one of its own.
        var domainOf = Array(repeating: -1, count: count)
        var members: [[Int]] = []
        for domain in vm.domains {
            var valid: [Int] = []
            for vcpu in domain where domainOf.indices.contains(vcpu) && domainOf[vcpu] == -1 {
                domainOf[vcpu] = members.count
                valid.append(vcpu)
            }
            if !valid.isEmpty { members.append(valid.sorted()) }
        }
        for vcpu in 0..<count where domainOf[vcpu] == -1 {
            domainOf[vcpu] = members.count
            members.append([vcpu])
        }
        self.domainOf = domainOf
        self.members = members
        fullSpeed = vm.vcpus.map { vcpu in
            min(limits.utilCap, Self.utilization(forPerformanceKHz: vcpu.maxFrequencyKHz, of: vcpu, compensateHeadroom: vm.compensateHeadroom))
        }
        slower = vm.vcpus.map(\.isSlowerThanHost)
        applied = (0..<count).map { [fullSpeed] index in
            let vcpu = vm.vcpus[index]
            return HostHint(
                utilMin: 0, utilMax: vcpu.isSlowerThanHost ? fullSpeed[index] : limits.utilCap, latency: .none,
                affinity: vm.pin ? vcpu.hostCPUs : nil)
        }
        domainRequested = Array(repeating: false, count: members.count)
        reported = Array(repeating: nil, count: count)
        // Every vCPU is reported once at attach so the daemon pins its thread.
        isDirty = Array(repeating: true, count: count)
        dirtyList = Array(0..<count)
        dirtyCount = count
        deadlines = DeadlineQueue(capacity: count)
    }

    public var vcpuCount: Int { states.count }

    /// The hint the host should have on this vCPU's thread now;
    /// `HostHint.neutral` for an index the VM does not have.
    public func appliedHint(vcpu: Int) -> HostHint {
        applied.indices.contains(vcpu) ? applied[vcpu] : .neutral
    }

    /// What the engine knows about this vCPU; an empty state for an index the
    /// VM does not have.
    public func state(vcpu: Int) -> VCPUPolicyState {
        states.indices.contains(vcpu) ? states[vcpu] : VCPUPolicyState()
    }

    /// The highest demand of the vCPU's performance domain: the util_min the
    /// policy wants for every vCPU of the domain before hysteresis.
    public func domainDemand(vcpu: Int) -> UInt16 {
        guard domainOf.indices.contains(vcpu) else { return 0 }
        var demand: UInt16 = 0
        for member in members[domainOf[vcpu]] { demand = max(demand, states[member].demand) }
        return demand
    }

    /// The earliest time at which `advance(to:)` may change something: a
    /// held change, a boost ending, or an idle decay. nil: nothing pending.
    public var nextDeadline: UInt64? { deadlines.first?.deadline }

    /// Some applied hint changed since the last drain; cheap to test before
    /// calling `drainChanges` (which drops a change that was undone since).
    public var hasChanges: Bool { dirtyCount > 0 }

    /// Takes a guest request that arrived at `now` (ns). It replaces the
    /// vCPU's previous request. Timers that are due by `now` run first, so a
    /// late `advance` never leaves an expired boost in a domain's maximum.
    public mutating func submit(_ request: GuestRequest, now: UInt64) {
        advance(to: now)
        let vcpu = request.vcpu
        guard states.indices.contains(vcpu) else {
            rejectedRequests &+= 1
            return
        }
        var state = states[vcpu]
        state.lastRequest = request
        state.lastRequestAt = now
        state.isIdle = false
        if let utilization = Self.utilization(for: request, of: vm.vcpus[vcpu], compensateHeadroom: vm.compensateHeadroom) {
            state.requestedUtilization = utilization
        }
        if request.boost, limits.boostEnabled {
            state.boostUntil = PolicyLimits.deadline(now, plus: limits.boostHoldNanoseconds)
        }
        if let sensitive = request.latencySensitive { state.latencySensitive = sensitive }
        states[vcpu] = state
        domainRequested[domainOf[vcpu]] = true
        updateDemand(vcpu)
        refreshDomain(of: vcpu, now: now)
    }

    /// Runs every timer due by `now` (ns): releases held changes, ends
    /// boosts, decays idle vCPUs.
    public mutating func advance(to now: UInt64) {
        while let (vcpu, deadline) = deadlines.first, deadline <= now {
            var state = states[vcpu]
            if let end = state.boostUntil, end <= now { state.boostUntil = nil }
            if let decay = idleDeadline(state), decay <= now {
                state.isIdle = true
                state.boostUntil = nil
            }
            states[vcpu] = state
            updateDemand(vcpu)
            // Leaves every member's deadline after `now` (or none), so the loop ends.
            refreshDomain(of: vcpu, now: now)
        }
    }

    /// Calls `body` once for every vCPU whose applied hint differs from the
    /// one last reported (at first: every vCPU), in ascending vCPU order,
    /// then forgets them. A hint that changed and changed back in between is
    /// not reported. `body` must not call the engine.
    public mutating func drainChanges(_ body: (_ vcpu: Int, _ hint: HostHint) -> Void) {
        guard dirtyCount > 0 else { return }
        if dirtyCount > Self.insertionSortLimit {
            for vcpu in 0..<isDirty.count where isDirty[vcpu] { report(vcpu, body) }
        } else {
            // Insertion sort in place: no allocation, and the list is usually
            // sorted already (domains are marked in ascending order).
            for i in 1..<max(dirtyCount, 1) {
                let vcpu = dirtyList[i]
                var j = i
                while j > 0, dirtyList[j - 1] > vcpu {
                    dirtyList[j] = dirtyList[j - 1]
                    j -= 1
                }
                dirtyList[j] = vcpu
            }
            for i in 0..<dirtyCount { report(dirtyList[i], body) }
        }
        dirtyCount = 0
    }

    private mutating func report(_ vcpu: Int, _ body: (_ vcpu: Int, _ hint: HostHint) -> Void) {
        isDirty[vcpu] = false
        guard reported[vcpu] != applied[vcpu] else { return }
        reported[vcpu] = applied[vcpu]
        body(vcpu, applied[vcpu])
    }

    // MARK: - Internals

    /// When idle decay would hit this vCPU: only while it has a request and
    /// something to lose (a demand or a boost).
    private func idleDeadline(_ state: VCPUPolicyState) -> UInt64? {
        guard limits.idleDecayNanoseconds > 0, !state.isIdle, let last = state.lastRequestAt,
            state.requestedUtilization > 0 || state.boostUntil != nil
        else { return nil }
        return PolicyLimits.deadline(last, plus: limits.idleDecayNanoseconds)
    }

    private mutating func updateDemand(_ vcpu: Int) {
        let state = states[vcpu]
        var wanted: UInt16 = 0
        if !state.isIdle {
            wanted = state.requestedUtilization
            if state.boostUntil != nil { wanted = max(wanted, limits.boostUtilization) }
        }
        states[vcpu].isCapped = wanted > limits.utilCap
        states[vcpu].demand = min(wanted, limits.utilCap)
    }

    private mutating func refreshDomain(of vcpu: Int, now: UInt64) {
        let domain = members[domainOf[vcpu]]
        var demand: UInt16 = 0
        for member in domain { demand = max(demand, states[member].demand) }
        for member in domain { refresh(member, domainDemand: demand, now: now) }
    }

    /// Recomputes one vCPU's hint from its domain's demand, then applies,
    /// holds or drops the change, and re-arms the vCPU's deadline.
    private mutating func refresh(_ vcpu: Int, domainDemand: UInt16, now: UInt64) {
        let current = applied[vcpu]
        let utilMin = Self.damped(
            target: domainDemand, applied: current.utilMin, hysteresis: limits.hysteresis,
            fullSpeed: fullSpeed[vcpu], cap: limits.utilCap)
        let utilMax: UInt16
        if slower[vcpu] {
            utilMax = domainRequested[domainOf[vcpu]] ? utilMin : max(utilMin, fullSpeed[vcpu])
        } else {
            utilMax = limits.utilCap
        }
        let latency = states[vcpu].latencySensitive ? limits.latencyHint : .none
        if utilMin == current.utilMin, utilMax == current.utilMax, latency == current.latency {
            states[vcpu].heldUntil = nil
        } else if let last = states[vcpu].lastAppliedAt,
            case let release = PolicyLimits.deadline(last, plus: limits.minimumIntervalNanoseconds), now < release
        {
            // Also taken when `now` went backwards (before the last change):
            // the change then waits for the interval measured from that change.
            states[vcpu].heldUntil = release
        } else {
            applied[vcpu].utilMin = utilMin
            applied[vcpu].utilMax = utilMax
            applied[vcpu].latency = latency
            states[vcpu].lastAppliedAt = now
            states[vcpu].heldUntil = nil
            markDirty(vcpu)
        }
        let state = states[vcpu]
        var deadline = state.heldUntil
        if let end = state.boostUntil { deadline = min(deadline ?? end, end) }
        if let decay = idleDeadline(state) { deadline = min(deadline ?? decay, decay) }
        deadlines.set(vcpu, to: deadline)
    }

    private mutating func markDirty(_ vcpu: Int) {
        guard !isDirty[vcpu] else { return }
        isDirty[vcpu] = true
        dirtyList[dirtyCount] = vcpu
        dirtyCount += 1
    }
}
