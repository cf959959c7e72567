/// The WORKLOAD op's utilization estimate and schedutil's choice, in Swift,
/// with the guest's integer arithmetic (guest_interpreter.S, `wl_pelt` and
/// `wl_sugov`), so that what the guest computed can be checked against a
/// replay of its own time stamps, and so that the benchmark's documentation
/// has one executable definition. Pure: time is the caller's, in TSC ticks.
///
/// PELT, as Linux does it in spirit: time is cut into periods (1024 µs); the
/// vCPU's running time in a period, scaled by cur_perf / max (frequency
/// invariance), becomes that period's share s ∈ [0, 1]; when a period
/// closes, util ← util × y + 1024 × s × (1 − y), y = 0.5^(1/32) (a
/// contribution halves in 32 periods). Unlike Linux, the current period's
/// share counts only once it closes, so the estimate lags by up to one period.
public struct GuestUtilization: Sendable, Equatable {
    /// util × 65536, 0...1024 × 65536.
    public private(set) var fixed: UInt64
    public private(set) var periodPosition: UInt64 = 0
    public private(set) var periodRunning: UInt64 = 0
    public private(set) var lastUpdate: UInt64
    public let periodTicks: UInt64
    /// y × 65536.
    public let decayFixed: UInt64
    /// cur_perf / max × 1024 (at most 1024).
    public var scale: UInt64 = 1024

    public init(periodTicks: UInt64, decayFixed: UInt64, start: UInt64, utilization: Double = 0) {
        self.periodTicks = max(periodTicks, 1)
        self.decayFixed = min(decayFixed, 65535)
        self.lastUpdate = start
        self.fixed = UInt64((min(max(utilization, 0), 1024) * 65536).rounded())
    }

    /// The estimate, 0...1024 (what the guest records: the integer part).
    public var utilization: UInt32 { UInt32(fixed >> 16) }

    /// Accounts the time since the last update, as running or idle.
    public mutating func update(now: UInt64, running: Bool) {
        var delta = now >= lastUpdate ? now - lastUpdate : 0
        lastUpdate = now
        delta = min(delta, periodTicks << 10)
        while delta > 0 {
            let step = min(delta, periodTicks - periodPosition)
            delta -= step
            periodPosition += step
            if running { periodRunning += (step &* scale) >> 10 }
            if periodPosition >= periodTicks {
                let share = (periodRunning << 26) / periodTicks
                fixed = (fixed &* decayFixed &+ share &* (65536 - decayFixed)) >> 16
                periodPosition = 0
                periodRunning = 0
            }
        }
    }

    /// schedutil's level for the estimate `fixed` (util × 65536): 1.25 × max
    /// × util / 1024, at most the maximum, then the lowest table entry at or
    /// above it (the last entry when none is).
    public static func performance(fixed: UInt64, tableKHz: [UInt32]) -> UInt32 {
        let maximum = UInt64(tableKHz.last ?? 0)
        let wanted = min((fixed &* maximum &* 5) >> 28, maximum)
        return tableKHz.first { UInt64($0) >= wanted } ?? UInt32(truncatingIfNeeded: wanted)
    }
}
