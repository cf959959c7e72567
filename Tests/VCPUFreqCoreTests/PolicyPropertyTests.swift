import Testing
@testable import VCPUFreqCore

private let ms: UInt64 = 1_000_000

/// One run: a topology, a cap and a seed that picks the settings and the
/// request sequence.
struct PolicyPropertyCase: Sendable, CustomTestStringConvertible {
    var topology: Topology
    var utilCap: Int
    var seed: UInt64
    var testDescription: String { "\(topology.host.name)/\(topology.vms[0].name) \(topology.vms[0].tableMode.rawValue) cap \(utilCap) seed \(seed)" }

    static let all: [PolicyPropertyCase] = PolicyFixtures.allTopologies().enumerated().flatMap { index, topology in
        [0, 1, 300, 512, 1000, 1024].map { PolicyPropertyCase(topology: topology, utilCap: $0, seed: UInt64(index * 1000 + $0)) }
    }
}

/// Random requests, times and timer runs, with the rules the daemon relies on
/// checked after every step.
@Suite struct PolicyPropertyTests {
    /// Random settings for a run (each mechanism on or off).
    static func settings(_ random: inout PolicyPRNG) -> (inout PolicySettings) -> Void {
        let hysteresis = [0, 1, 8, 50].randomElement(using: &random)!
        let interval = [0, 500, 1000, 4000].randomElement(using: &random)!
        let hold = [0, 5, 50].randomElement(using: &random)!
        let boost = [0, 300, 700, 1024].randomElement(using: &random)!
        let idle = [0, 3, 30, 200].randomElement(using: &random)!
        let latency = LatencyHintKind.allCases.randomElement(using: &random)!
        return {
            $0.hysteresis = hysteresis
            $0.minimumIntervalMicroseconds = interval
            $0.boostHoldMilliseconds = hold
            $0.boostUtilization = boost
            $0.idleDecayMilliseconds = idle
            $0.latencyHint = latency
        }
    }

    /// A random request, sometimes for a vCPU the VM does not have, with
    /// values inside and outside what the device model would let through.
    static func request(_ random: inout PolicyPRNG, _ model: VMModel) -> GuestRequest {
        let vcpu = random.next() % 50 == 0 ? model.vcpuCount : Int.random(in: 0..<model.vcpuCount, using: &random)
        let table = model.vcpus[min(vcpu, model.vcpuCount - 1)].frequenciesKHz
        var performance: UInt32?
        var utilization: UInt32?
        switch random.next() % 6 {
        case 0, 1: performance = table.randomElement(using: &random)
        case 2: performance = UInt32.random(in: 1...(table.last! + 10_000), using: &random)
        case 3: utilization = UInt32.random(in: 0...1100, using: &random)
        case 4:
            performance = table.randomElement(using: &random)
            utilization = UInt32.random(in: 0...1024, using: &random)
        default: break  // flags only
        }
        let latency: Bool? = [nil, nil, true, false].randomElement(using: &random)!
        let boost = random.next() % 8 == 0
        let source: RequestSource = latency == nil && !boost ? (utilization == nil ? .upstreamRegister : .utilHintRegister) : .sharedPage
        return GuestRequest(vcpu: vcpu, performanceKHz: performance, utilization: utilization, latencySensitive: latency, boost: boost, source: source)
    }

    /// The same request asking for more: a higher performance level and/or utilization.
    static func higher(_ request: GuestRequest, _ random: inout PolicyPRNG) -> GuestRequest? {
        guard request.performanceKHz != nil || request.utilization != nil else { return nil }
        var more = request
        if let performance = request.performanceKHz { more.performanceKHz = performance &+ UInt32.random(in: 1...500_000, using: &random) }
        if let utilization = request.utilization { more.utilization = utilization + UInt32.random(in: 1...200, using: &random) }
        if more.performanceKHz ?? 0 < request.performanceKHz ?? 0 { more.performanceKHz = .max }
        return more
    }

    @Test(arguments: PolicyPropertyCase.all)
    func rulesHoldOverRandomSequences(run: PolicyPropertyCase) throws {
        var random = PolicyPRNG(seed: run.seed)
        let headroom: HeadroomCompensation = Bool.random(using: &random) ? .schedutil : .none
        let model = try PolicyFixtures.model(run.topology, utilCap: run.utilCap, headroom: headroom, Self.settings(&random))
        let cap = UInt16(run.utilCap)
        var engine = PolicyEngine(vm: model)
        var lastReported: [HostHint?] = Array(repeating: nil, count: model.vcpuCount)
        var now: UInt64 = UInt64.random(in: 0...(1 << 40), using: &random)
        var problems: [String] = []  // collected, so a broken rule shows its first steps, not thousands of failures
        func check(_ ok: Bool, _ what: @autoclosure () -> String, step: Int) {
            if !ok && problems.count < 10 { problems.append("step \(step): \(what())") }
        }

        for step in 0..<300 {
            let operation = random.next() % 20
            if operation < 16 {
                now += [0, 1, 100_000, 700_000, 2 * ms, 40 * ms].randomElement(using: &random)!
                let request = Self.request(&random, model)
                if let more = Self.higher(request, &random), model.vcpus.indices.contains(request.vcpu) {
                    // Monotone: from the same state, asking for more never gives less.
                    var lower = engine, upper = engine
                    lower.submit(request, now: now)
                    upper.submit(more, now: now)
                    for vcpu in 0..<model.vcpuCount {
                        check(lower.appliedHint(vcpu: vcpu).utilMin <= upper.appliedHint(vcpu: vcpu).utilMin, "monotone, vCPU \(vcpu): \(request) vs \(more)", step: step)
                    }
                }
                engine.submit(request, now: now)
                // Idempotent: the same request again at the same time changes nothing.
                var again = engine
                _ = again.drained()
                again.submit(request, now: now)
                check(again.drained() == [], "idempotent: \(request)", step: step)
            } else if operation < 19 {
                now += UInt64.random(in: 0...(5 * ms), using: &random)
                engine.advance(to: now)
            } else if let deadline = engine.nextDeadline {
                now = max(now, deadline)
                engine.advance(to: now)
            }

            // Bounds: util_min <= util_max <= cap, util_max by the slower-than-host rule.
            for vcpu in model.vcpus {
                let hint = engine.appliedHint(vcpu: vcpu.index)
                check(hint.utilMin <= hint.utilMax && hint.utilMax <= cap, "bounds, vCPU \(vcpu.index): \(hint)", step: step)
                let fullSpeed = min(UInt16(cap), PolicyEngine.utilization(
                    forPerformanceKHz: vcpu.maxFrequencyKHz, of: vcpu, compensateHeadroom: model.compensateHeadroom))
                let slowerMax = [hint.utilMin, max(hint.utilMin, fullSpeed)]
                check(vcpu.isSlowerThanHost ? slowerMax.contains(hint.utilMax) : hint.utilMax == cap, "util_max, vCPU \(vcpu.index): \(hint)", step: step)
                check(hint.affinity == vcpu.hostCPUs, "affinity, vCPU \(vcpu.index)", step: step)
                check(engine.state(vcpu: vcpu.index).demand <= cap, "demand above cap", step: step)
                if run.utilCap == 0 { check(hint.latency == .none, "latency with cap 0", step: step) }
            }
            // Every due timer has run: the next deadline is in the future.
            if let deadline = engine.nextDeadline { check(deadline > now, "deadline \(deadline) not after \(now)", step: step) }
            // Nothing changes before the next deadline.
            if random.next() % 4 == 0 {
                var waiting = engine
                _ = waiting.drained()
                let before = (0..<model.vcpuCount).map { waiting.appliedHint(vcpu: $0) }
                waiting.advance(to: (engine.nextDeadline ?? .max) - 1)
                check(waiting.drained() == [], "a change before the deadline", step: step)
                check((0..<model.vcpuCount).map { waiting.appliedHint(vcpu: $0) } == before, "hint moved before the deadline", step: step)
            }
            // Drain (not after every step, so changes also pile up): ascending,
            // each a real change, equal to the applied hint, none missed.
            if random.next() % 3 != 0 {
                let changes = engine.drained()
                check(zip(changes, changes.dropFirst()).allSatisfy { $0.vcpu < $1.vcpu }, "drain order \(changes.map { $0.vcpu })", step: step)
                for change in changes {
                    check(change.hint == engine.appliedHint(vcpu: change.vcpu), "reported \(change) is not applied", step: step)
                    check(lastReported[change.vcpu] != change.hint, "reported \(change) without a change", step: step)
                    lastReported[change.vcpu] = change.hint
                }
                for vcpu in 0..<model.vcpuCount {
                    check(lastReported[vcpu] == engine.appliedHint(vcpu: vcpu), "vCPU \(vcpu) changed but was not reported", step: step)
                }
            }
        }
        #expect(problems == [])
    }

    /// Without hysteresis and minimum interval, the applied hints are a pure
    /// function of the request history and the time. A naive re-statement of
    /// the rules (no timers, no heap, everything recomputed from scratch)
    /// must agree with the engine after every step.
    @Test(arguments: PolicyPropertyCase.all)
    func agreesWithANaiveReferenceWithoutDamping(run: PolicyPropertyCase) throws {
        var random = PolicyPRNG(seed: run.seed ^ 0x5EED)
        let headroom: HeadroomCompensation = Bool.random(using: &random) ? .schedutil : .none
        let configure = Self.settings(&random)
        let model = try PolicyFixtures.model(run.topology, utilCap: run.utilCap, headroom: headroom) {
            configure(&$0)
            $0.hysteresis = 0
            $0.minimumIntervalMicroseconds = 0
        }
        var engine = PolicyEngine(vm: model)
        var reference = ReferencePolicy(model: model, compensate: headroom == .schedutil)
        var now: UInt64 = 1_000 * ms
        var mismatches: [String] = []
        for step in 0..<300 {
            if random.next() % 5 != 0 {
                now += [0, 1, 700_000, 2 * ms, 4 * ms, 40 * ms, 300 * ms].randomElement(using: &random)!
                let request = Self.request(&random, model)
                engine.submit(request, now: now)
                reference.submit(request, now: now)
            } else {
                now += UInt64.random(in: 0...(60 * ms), using: &random)
                engine.advance(to: now)
            }
            for vcpu in 0..<model.vcpuCount where engine.appliedHint(vcpu: vcpu) != reference.hint(vcpu, now: now) {
                if mismatches.count < 10 { mismatches.append("step \(step), vCPU \(vcpu): \(engine.appliedHint(vcpu: vcpu)) vs \(reference.hint(vcpu, now: now))") }
            }
        }
        #expect(mismatches == [])
    }
}

/// The policy rules restated the simple way: remember each vCPU's latest
/// requested utilization, its last request and boost times and its latency
/// flag, and derive the hint at any time from scratch.
struct ReferencePolicy {
    let model: VMModel
    let compensate: Bool
    var requested: [Int]
    var lastRequestAt: [UInt64?]
    var boostedAt: [UInt64?]
    var sensitive: [Bool]

    init(model: VMModel, compensate: Bool) {
        self.model = model
        self.compensate = compensate
        requested = Array(repeating: 0, count: model.vcpuCount)
        lastRequestAt = Array(repeating: nil, count: model.vcpuCount)
        boostedAt = Array(repeating: nil, count: model.vcpuCount)
        sensitive = Array(repeating: false, count: model.vcpuCount)
    }

    var cap: Int { model.utilCap }
    var idle: UInt64 { UInt64(model.policy.idleDecayMilliseconds) * 1_000_000 }
    var hold: UInt64 { UInt64(model.policy.boostHoldMilliseconds) * 1_000_000 }

    /// capacity × perf / max (× 0.8), in floating point, rounded half away from zero.
    func utilization(_ request: GuestRequest) -> Int? {
        let vcpu = model.vcpus[request.vcpu]
        var result: Int?
        if let performance = request.performanceKHz {
            let clampedPerformance = Double(min(performance, vcpu.maxFrequencyKHz))
            let exact = Double(vcpu.capacity) * clampedPerformance * (compensate ? 4 : 1) / (Double(vcpu.maxFrequencyKHz) * (compensate ? 5 : 1))
            result = min(1024, Int(exact.rounded(.toNearestOrAwayFromZero)))
        }
        if let utilization = request.utilization { result = max(result ?? 0, min(Int(utilization), 1024)) }
        return result
    }

    /// The utilization of the vCPU's highest level, within the cap.
    func fullSpeed(_ vcpu: Int) -> Int {
        min(cap, utilization(GuestRequest(vcpu: vcpu, performanceKHz: model.vcpus[vcpu].maxFrequencyKHz, source: .upstreamRegister)) ?? 0)
    }

    mutating func submit(_ request: GuestRequest, now: UInt64) {
        let vcpu = request.vcpu
        guard model.vcpus.indices.contains(vcpu) else { return }
        // A silence long enough to decay also ended any boost.
        if idle > 0, let last = lastRequestAt[vcpu], now - last >= idle { boostedAt[vcpu] = nil }
        lastRequestAt[vcpu] = now
        if let utilization = utilization(request) { requested[vcpu] = utilization }
        if request.boost, cap > 0, hold > 0 { boostedAt[vcpu] = now }
        if let flag = request.latencySensitive { sensitive[vcpu] = flag }
    }

    func demand(_ vcpu: Int, now: UInt64) -> Int {
        guard let last = lastRequestAt[vcpu] else { return 0 }
        if idle > 0, now >= last + idle { return 0 }
        var demand = requested[vcpu]
        if let boosted = boostedAt[vcpu], now < boosted + hold { demand = max(demand, model.policy.boostUtilization) }
        return min(demand, cap)
    }

    func hint(_ vcpu: Int, now: UInt64) -> HostHint {
        let domain = model.vcpus[vcpu].performanceDomain
        let utilMin = model.vcpus.filter { $0.performanceDomain == domain }.map { demand($0.index, now: now) }.max() ?? 0
        // A slower-than-host vCPU is held to util_min once its domain has
        // asked anything, to its modeled full speed before.
        let domainRequested = model.vcpus.contains { $0.performanceDomain == domain && lastRequestAt[$0.index] != nil }
        let utilMax = model.vcpus[vcpu].isSlowerThanHost ? (domainRequested ? utilMin : max(utilMin, fullSpeed(vcpu))) : cap
        var latency = LatencyHint.none
        if sensitive[vcpu], cap > 0 {
            switch model.policy.latencyHint {
            case .slice: latency = .slice(microseconds: UInt32(model.policy.latencySliceMicroseconds))
            case .nice: latency = .nice(Int8(model.policy.latencyNice))
            case .none: latency = .none
            }
        }
        return HostHint(utilMin: UInt16(utilMin), utilMax: UInt16(utilMax), latency: latency, affinity: model.vcpus[vcpu].hostCPUs)
    }
}
