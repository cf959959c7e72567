/// A VM's policy settings turned once, at attach, into the units and bounds
/// the hot path uses: utilizations as `UInt16` within 0...1024, times in
/// nanoseconds. A checked topology already keeps every setting in range; the
/// clamps here make a hand-built `VMModel` with bad values harmless too.
struct PolicyLimits: Equatable, Sendable {
    /// Highest utilization (0...1024) any hint of the VM may carry.
    var utilCap: UInt16
    /// Dead band of util_min/util_max changes, 0...1024.
    var hysteresis: UInt16
    /// Minimum time between two applied changes of one vCPU's hint, ns.
    var minimumIntervalNanoseconds: UInt64
    /// How long a boost lasts after the vCPU's last boost request, ns.
    var boostHoldNanoseconds: UInt64
    /// Demand a boost lifts a vCPU to, 0...1024 (cut to the cap with the demand).
    var boostUtilization: UInt16
    /// Silence after which a vCPU's demand decays to 0, ns; 0 = never.
    var idleDecayNanoseconds: UInt64
    /// The hint a latency-sensitive vCPU gets: the operator's setting, within
    /// the kernel's bounds, or `.none` when the VM may have no latency hint.
    var latencyHint: LatencyHint

    /// EEVDF accepts a custom slice of 0.1...100 ms (Linux 6.12+).
    static let sliceMicroseconds: ClosedRange<Int> = 100...100_000
    /// Nice values the kernel accepts.
    static let nice: ClosedRange<Int> = -20...19
    /// Utilization scale of the scheduler (SCHED_CAPACITY_SCALE).
    static let utilization: ClosedRange<Int> = 0...1024

    init(vm: VMModel) {
        let settings = vm.policy
        utilCap = UInt16(Self.clamp(vm.utilCap, to: Self.utilization))
        hysteresis = UInt16(Self.clamp(settings.hysteresis, to: Self.utilization))
        minimumIntervalNanoseconds = Self.nanoseconds(settings.minimumIntervalMicroseconds, per: 1_000)
        boostHoldNanoseconds = Self.nanoseconds(settings.boostHoldMilliseconds, per: 1_000_000)
        boostUtilization = UInt16(Self.clamp(settings.boostUtilization, to: Self.utilization))
        idleDecayNanoseconds = Self.nanoseconds(settings.idleDecayMilliseconds, per: 1_000_000)
        // The guest only says "latency-sensitive"; the strength of the hint is
        // the operator's alone, so a guest can never obtain more than that.
        // A VM capped to 0 is one the operator wants to have no influence.
        switch settings.latencyHint {
        case _ where utilCap == 0: latencyHint = .none
        case .none: latencyHint = .none
        case .slice:
            latencyHint = .slice(microseconds: UInt32(Self.clamp(settings.latencySliceMicroseconds, to: Self.sliceMicroseconds)))
        case .nice:
            latencyHint = .nice(Int8(Self.clamp(settings.latencyNice, to: Self.nice)))
        }
    }

    /// Boosting is off for a VM capped to 0 and when the hold time is 0 (a
    /// boost would end the moment it starts).
    var boostEnabled: Bool { utilCap > 0 && boostHoldNanoseconds > 0 }

    /// `a + b`, saturating at `UInt64.max`: a deadline past the end of time
    /// simply never fires (guest-driven times must not trap).
    static func deadline(_ a: UInt64, plus b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    static func clamp(_ value: Int, to range: ClosedRange<Int>) -> Int {
        min(max(value, range.lowerBound), range.upperBound)
    }

    /// `value` units of `1/per` s as ns; negative → 0, overflow saturates.
    static func nanoseconds(_ value: Int, per unit: UInt64) -> UInt64 {
        guard value > 0 else { return 0 }
        let (product, overflow) = UInt64(value).multipliedReportingOverflow(by: unit)
        return overflow ? UInt64.max : product
    }
}
