import Testing
@testable import VCPUFreqCore

private let ms: UInt64 = 1_000_000
private let us: UInt64 = 1_000

/// Hysteresis, the minimum interval, boost, idle decay and the deadline the
/// daemon arms its timer for. Phone vCPU 6 and 7 form the big domain; its
/// full speed is 1024, the little domain's (vCPUs 0-3) is 160.
@Suite struct PolicyTimingTests {
    // MARK: Hysteresis

    /// (target, applied, hysteresis, full speed, cap) → applied afterwards.
    @Test(arguments: [
        (100, 0, 8, 160, 1024, 100),  // a big move applies
        (5, 0, 8, 160, 1024, 0),  // a small move from idle does not
        (0, 5, 8, 160, 1024, 0),  // ...but idle is always reached
        (105, 100, 8, 160, 1024, 100),
        (108, 100, 8, 160, 1024, 108),  // exactly the hysteresis applies
        (93, 100, 8, 160, 1024, 100),
        (92, 100, 8, 160, 1024, 92),
        (158, 155, 8, 160, 1024, 155),
        (160, 155, 8, 160, 1024, 160),  // full speed is always reached
        (162, 155, 8, 160, 1024, 162),  // ...or crossed
        (157, 160, 8, 160, 1024, 160),  // leaving an extreme keeps the dead band
        (3, 0, 8, 160, 1024, 0),
        (1020, 1016, 8, 160, 1024, 1016),
        (1024, 1020, 8, 160, 1024, 1024),  // the cap is always reached
        (1019, 1024, 8, 160, 1024, 1024),
        (512, 508, 8, 1024, 512, 512),  // a lower cap is the extreme
        (1, 0, 0, 160, 1024, 1),  // hysteresis 0: every change
        (100, 100, 8, 160, 1024, 100),
        (600, 0, 1024, 1024, 1024, 0),  // hysteresis 1024: only extremes move it
        (1024, 600, 1024, 1024, 1024, 1024),
    ] as [(UInt16, UInt16, UInt16, UInt16, UInt16, UInt16)])
    func deadBand(target: UInt16, applied: UInt16, hysteresis: UInt16, fullSpeed: UInt16, cap: UInt16, expected: UInt16) {
        #expect(PolicyEngine.damped(target: target, applied: applied, hysteresis: hysteresis, fullSpeed: fullSpeed, cap: cap) == expected)
    }

    /// Over every target, the dead band is monotone (the engine's
    /// monotonicity rests on it) and never off the target by the hysteresis or more.
    @Test(arguments: [0, 1, 8, 64, 1024] as [UInt16], [(160, 1024), (819, 1024), (1024, 1024), (100, 512), (0, 0)] as [(UInt16, UInt16)])
    func deadBandIsMonotoneAndWithinHysteresis(hysteresis: UInt16, extremes: (fullSpeed: UInt16, cap: UInt16)) {
        for applied in stride(from: 0, through: Int(extremes.cap), by: 13).map(UInt16.init) + [extremes.fullSpeed, extremes.cap] {
            var previous: UInt16 = 0
            var broken: [UInt16] = []  // targets breaking either rule (kept out of #expect: ~10^6 cases)
            for target in 0...extremes.cap {
                let result = PolicyEngine.damped(target: target, applied: applied, hysteresis: hysteresis, fullSpeed: extremes.fullSpeed, cap: extremes.cap)
                let withinBand = result == target || (result == applied && max(result, target) - min(result, target) < hysteresis)
                if result < previous || !withinBand { broken.append(target) }
                previous = result
            }
            #expect(broken == [], "applied \(applied)")
        }
    }

    @Test func hysteresisInTheEngine() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.hysteresis = 8 }
        engine.util(6, 100, at: 1 * ms)
        #expect(engine.drained().map(\.vcpu) == [6, 7])
        engine.util(6, 105, at: 2 * ms)
        #expect(engine.drained() == [])
        #expect(engine.utilMins[6...7] == [100, 100])
        #expect(engine.state(vcpu: 6).demand == 105)
        engine.util(6, 108, at: 3 * ms)
        #expect(engine.utilMins[6...7] == [108, 108])
        engine.util(6, 4, at: 4 * ms)
        #expect(engine.utilMins[6...7] == [4, 4])
        engine.util(6, 0, at: 5 * ms)  // 4 → 0 reaches idle
        #expect(engine.utilMins[6...7] == [0, 0])
        engine.util(6, 5, at: 6 * ms)
        #expect(engine.utilMins[6...7] == [0, 0])
        engine.util(0, 155, at: 7 * ms)
        engine.perf(0, 1_803_000, at: 8 * ms)  // little full speed, 160, is 5 away
        #expect(engine.utilMins[0...3] == [160, 160, 160, 160])
        engine.util(6, 1020, at: 9 * ms)
        engine.perf(6, 2_802_000, at: 10 * ms)  // big full speed and the cap
        #expect(engine.utilMins[6...7] == [1024, 1024])
    }

    // MARK: Minimum interval

    @Test func aChangeWithinTheIntervalIsHeldAndTheLatestTargetReleased() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.minimumIntervalMicroseconds = 1000 }
        let t0 = 10 * ms
        engine.util(6, 100, at: t0)  // first change after attach: applies
        #expect(engine.drained().map(\.vcpu) == [6, 7])
        #expect(engine.state(vcpu: 6).lastAppliedAt == t0)
        #expect(engine.nextDeadline == nil)

        engine.util(6, 200, at: t0 + 500 * us)
        #expect(engine.drained() == [])
        #expect(engine.state(vcpu: 6).heldUntil == t0 + 1 * ms)
        #expect(engine.state(vcpu: 7).isHeld)
        #expect(engine.nextDeadline == t0 + 1 * ms)
        engine.util(6, 300, at: t0 + 700 * us)
        #expect(engine.nextDeadline == t0 + 1 * ms)

        engine.advance(to: t0 + 999 * us)
        #expect(engine.drained() == [])
        engine.advance(to: t0 + 1 * ms)
        #expect(engine.drained().map { [$0.vcpu, Int($0.hint.utilMin)] } == [[6, 300], [7, 300]])
        #expect(engine.nextDeadline == nil)
        #expect(!engine.state(vcpu: 6).isHeld)
        #expect(engine.state(vcpu: 6).lastAppliedAt == t0 + 1 * ms)

        engine.util(6, 400, at: t0 + 2 * ms)  // the interval has passed: immediate
        #expect(engine.utilMins[6...7] == [400, 400])
        engine.util(6, 500, at: t0 + 2 * ms + 1)
        #expect(engine.nextDeadline == t0 + 3 * ms)
        engine.util(6, 400, at: t0 + 2 * ms + 2)  // back to what is applied: nothing to hold
        #expect(engine.nextDeadline == nil)
        engine.advance(to: t0 + 10 * ms)
        #expect(engine.drained().map(\.hint.utilMin) == [400, 400])
    }

    @Test func aLateRequestRunsTheTimersThatAreDueFirst() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.minimumIntervalMicroseconds = 1000 }
        engine.util(6, 100, at: 1 * ms)
        engine.util(6, 200, at: 1 * ms + 100 * us)  // held until 2 ms
        _ = engine.drained()
        engine.util(0, 50, at: 5 * ms)  // the daemon never called advance
        #expect(engine.drained().map(\.vcpu) == [0, 1, 2, 3, 6, 7])
        #expect(engine.utilMins == [50, 50, 50, 50, 0, 0, 200, 200])
    }

    @Test func timeGoingBackwardsHoldsInsteadOfTrapping() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.minimumIntervalMicroseconds = 1000 }
        engine.util(6, 100, at: 10 * ms)
        engine.util(6, 200, at: 5 * ms)
        #expect(engine.state(vcpu: 6).heldUntil == 11 * ms)
        engine.advance(to: 11 * ms)
        #expect(engine.utilMins[6...7] == [200, 200])
    }

    @Test func deadlinesAtTheEndOfTheClockSaturate() throws {
        var late = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.minimumIntervalMicroseconds = 1000 }
        late.util(6, 100, at: .max - 10)
        late.util(6, 200, at: .max - 5)
        #expect(late.state(vcpu: 6).heldUntil == .max)
        late.advance(to: .max)
        #expect(late.utilMins[6...7] == [200, 200])
        var boosting = try PolicyFixtures.engine(SampleTopologies.phone()) {
            $0.boostHoldMilliseconds = 50
            $0.idleDecayMilliseconds = 100
        }
        boosting.util(6, 100, at: .max - 10, boost: true)
        #expect(boosting.state(vcpu: 6).boostUntil == .max)
        #expect(boosting.nextDeadline == .max)
        boosting.advance(to: .max)
        #expect(boosting.nextDeadline == nil)
        #expect(boosting.state(vcpu: 6).isIdle)
        #expect(!boosting.state(vcpu: 6).isBoosted)
        #expect(boosting.utilMins[6...7] == [0, 0])
    }

    // MARK: Boost

    @Test func boostLiftsTheDemandUntilTheHoldEndsThenDecaysToTheRequest() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) {
            $0.boostHoldMilliseconds = 50
            $0.boostUtilization = 700
        }
        let t = 100 * ms
        engine.util(6, 100, at: t)
        engine.util(6, 100, at: t + 1 * ms, boost: true)
        #expect(engine.utilMins[6...7] == [700, 700])
        #expect(engine.state(vcpu: 6).boostUntil == t + 51 * ms)
        #expect(engine.nextDeadline == t + 51 * ms)
        engine.util(6, 200, at: t + 10 * ms)  // a plain request does not end the boost
        #expect(engine.utilMins[6...7] == [700, 700])
        engine.util(6, 900, at: t + 11 * ms)  // above the boost: the request wins
        #expect(engine.utilMins[6...7] == [900, 900])
        engine.util(6, 200, at: t + 12 * ms)
        #expect(engine.utilMins[6...7] == [700, 700])
        engine.util(6, 200, at: t + 20 * ms, boost: true)  // extends the hold
        #expect(engine.nextDeadline == t + 70 * ms)
        engine.advance(to: t + 70 * ms - 1)
        #expect(engine.utilMins[6...7] == [700, 700])
        engine.advance(to: t + 70 * ms)
        #expect(engine.utilMins[6...7] == [200, 200])
        #expect(!engine.state(vcpu: 6).isBoosted)
        #expect(engine.nextDeadline == nil)
    }

    /// (cap, boost utilization, hold ms) → util_min of a boosted vCPU requesting 100.
    @Test(arguments: [
        (1024, 700, 50, 700), (1024, 1024, 50, 1024), (500, 700, 50, 500), (0, 700, 50, 0),
        (1024, 50, 50, 100),  // a boost below the request changes nothing
        (1024, 700, 0, 100),  // a hold of 0 disables boosting
    ])
    func boostStaysWithinTheCap(cap: Int, boostUtilization: Int, holdMilliseconds: Int, expected: UInt16) throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone(), utilCap: cap) {
            $0.boostHoldMilliseconds = holdMilliseconds
            $0.boostUtilization = boostUtilization
        }
        engine.util(0, 100, at: 1 * ms, boost: true)
        #expect(engine.utilMins[0...3] == ArraySlice(repeating: expected, count: 4))
        #expect(engine.state(vcpu: 0).isBoosted == (cap > 0 && holdMilliseconds > 0))
    }

    // MARK: Idle decay

    @Test func aSilentVCPUDecaysToZero() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.idleDecayMilliseconds = 100 }
        let t = 1 * ms
        engine.util(6, 500, at: t, latency: true)
        engine.util(6, 500, at: t + 60 * ms)  // a request restarts the clock
        #expect(engine.nextDeadline == t + 160 * ms)
        engine.advance(to: t + 160 * ms - 1)
        #expect(engine.utilMins[6...7] == [500, 500])
        _ = engine.drained()
        engine.advance(to: t + 160 * ms)
        #expect(engine.drained().map(\.hint) == [6, 7].map { HostHint(utilMin: 0, utilMax: 1024, latency: $0 == 6 ? .slice(microseconds: 300) : .none, affinity: CPUList(6...7)) })
        #expect(engine.state(vcpu: 6).isIdle)
        #expect(engine.state(vcpu: 6).requestedUtilization == 500)
        #expect(engine.nextDeadline == nil)
        engine.util(6, 500, at: t + 200 * ms)
        #expect(engine.utilMins[6...7] == [500, 500])
        #expect(!engine.state(vcpu: 6).isIdle)
    }

    @Test func eachVCPUOfADomainDecaysOnItsOwn() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.idleDecayMilliseconds = 100 }
        engine.util(0, 300, at: 0)
        engine.util(1, 50, at: 50 * ms)
        engine.advance(to: 100 * ms)
        #expect(engine.utilMins[0...3] == [50, 50, 50, 50])
        #expect(engine.nextDeadline == 150 * ms)
        engine.advance(to: 150 * ms)
        #expect(engine.utilMins[0...3] == [0, 0, 0, 0])
    }

    @Test func idleDecayOfZeroNeverDecays() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.idleDecayMilliseconds = 0 }
        engine.util(6, 500, at: 1 * ms)
        #expect(engine.nextDeadline == nil)
        engine.advance(to: 3_600_000 * ms)
        #expect(engine.utilMins[6...7] == [500, 500])
    }

    @Test func nextDeadlineIsTheEarliestTimerOfAnyVCPU() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) {
            $0.boostHoldMilliseconds = 50
            $0.idleDecayMilliseconds = 30
            $0.boostUtilization = 700
        }
        engine.util(4, 300, at: 0)  // idle at 30 ms
        engine.util(6, 100, at: 10 * ms, boost: true)  // boost to 60 ms, idle at 40 ms
        #expect(engine.nextDeadline == 30 * ms)
        engine.advance(to: 30 * ms)
        #expect(engine.utilMins == [0, 0, 0, 0, 0, 0, 700, 700])
        #expect(engine.nextDeadline == 40 * ms)
        engine.advance(to: 40 * ms)  // idle decay ends the boost early
        #expect(engine.utilMins == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(!engine.state(vcpu: 6).isBoosted)
        #expect(engine.nextDeadline == nil)
    }
}
