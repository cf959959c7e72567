/// The arithmetic of the policy: guest request → utilization, and the
/// hysteresis dead band. Pure functions, so tests can check them on their own.
extension PolicyEngine {
    /// The utilization (0...1024) that makes the host run a vCPU thread as
    /// fast as the CPU the vCPU models would run at `performanceKHz`:
    /// `capacity × perf / maxFrequencyKHz` in 64-bit integers, rounded to
    /// nearest (halves up), then × 0.8 when the host governor is schedutil
    /// (it runs a CPU at 1.25 × utilization, so the clamp must undo that
    /// headroom). The × 0.8 is folded into the one division
    /// (`capacity × perf × 4 / (max × 5)`) so the result is rounded once.
    ///
    /// A request above the vCPU's table maximum counts as the maximum: the
    /// guest cannot get more than the CPU it models (the device model already
    /// rejects such writes; this keeps the policy safe on its own).
    public static func utilization(forPerformanceKHz performanceKHz: UInt32, of vcpu: VCPUModel, compensateHeadroom: Bool) -> UInt16 {
        let maximum = UInt64(vcpu.maxFrequencyKHz)
        guard maximum > 0 else { return 0 }
        let performance = min(UInt64(performanceKHz), maximum)
        // capacity ≤ 1024 and performance < 2^32, so even × 4 stays below 2^45.
        let capacity = UInt64(PolicyLimits.clamp(vcpu.capacity, to: PolicyLimits.utilization))
        var numerator = capacity * performance
        var denominator = maximum
        if compensateHeadroom {
            numerator *= 4
            denominator *= 5
        }
        let utilization = (numerator + denominator / 2) / denominator
        return UInt16(min(utilization, 1024))
    }

    /// A util hint is already on the scheduler's scale; anything above 1024
    /// is 1024.
    public static func utilization(forHint hint: UInt32) -> UInt16 {
        UInt16(min(hint, 1024))
    }

    /// The utilization a request asks for, or nil when it names neither a
    /// performance level nor a utilization. With both, the larger wins: the
    /// guest asked for at least each of them.
    public static func utilization(for request: GuestRequest, of vcpu: VCPUModel, compensateHeadroom: Bool) -> UInt16? {
        var result: UInt16?
        if let performance = request.performanceKHz {
            result = utilization(forPerformanceKHz: performance, of: vcpu, compensateHeadroom: compensateHeadroom)
        }
        if let hint = request.utilization {
            result = max(result ?? 0, utilization(forHint: hint))
        }
        return result
    }

    /// The value to apply when the policy wants `target` and the host has
    /// `applied`: a move smaller than `hysteresis` is skipped, unless it
    /// reaches or crosses an extreme (0, the vCPU's full speed, the cap), so a
    /// vCPU is never stuck just short of idle or of full speed.
    ///
    /// "Reaches or crosses" means the extreme lies between `applied`
    /// (exclusive) and `target` (inclusive). Sitting on an extreme does not
    /// disable the dead band around it, and the result stays monotone in
    /// `target`: the skipped targets form one interval around `applied`.
    static func damped(target: UInt16, applied: UInt16, hysteresis: UInt16, fullSpeed: UInt16, cap: UInt16) -> UInt16 {
        guard target != applied else { return target }
        let distance = target > applied ? target - applied : applied - target
        if distance >= hysteresis { return target }
        func reached(_ extreme: UInt16) -> Bool {
            target > applied ? (extreme > applied && extreme <= target) : (extreme >= target && extreme < applied)
        }
        return reached(0) || reached(fullSpeed) || reached(cap) ? target : applied
    }
}
