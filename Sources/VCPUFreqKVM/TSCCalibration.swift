/// The guest's time stamp counter against the host's monotonic clock, so
/// that the per-request tick counts the guest records become microseconds.
///
/// The guest reads its TSC before and after a long spin, twice, with spins
/// of two lengths; the host times both runs. Ticks per µs = (long ticks −
/// short ticks) / (long run − short run): the runs' fixed costs (entering
/// the guest, the final exit), which the guest's stamps do not see, cancel.
/// Both clocks keep running while the vCPU thread is preempted, so a
/// preemption during a spin does not bias the rate. The median of
/// `rounds` estimates is kept.
public struct TSCCalibration: Sendable, Equatable, Codable {
    /// Guest TSC ticks per microsecond (= the TSC frequency in MHz).
    public var ticksPerMicrosecond: Double
    /// The spread of the estimates, max − min over median (a few 1e-4 normally).
    public var relativeSpread: Double

    public init(ticksPerMicrosecond: Double, relativeSpread: Double) {
        self.ticksPerMicrosecond = ticksPerMicrosecond
        self.relativeSpread = relativeSpread
    }

    public func microseconds(ticks: UInt64) -> Double { Double(ticks) / ticksPerMicrosecond }
    public func ticks(for duration: Duration) -> UInt64 {
        UInt64(max(0, VCPU.nanoseconds(duration) / 1000 * ticksPerMicrosecond))
    }

    /// Calibrates on `vcpu` with spins of about `short` and `long` (`spin`
    /// converts durations into iterations).
    public static func measure(
        on vcpu: VCPU, spin: SpinCalibration, short: Duration = .milliseconds(10), long: Duration = .milliseconds(60),
        rounds: Int = 3
    ) throws(KVMError) -> TSCCalibration {
        func stamped(_ duration: Duration) throws(KVMError) -> (ticks: UInt64, host: Duration) {
            let run = try vcpu.run(script: [.timestamp, .spin(iterations: spin.iterations(for: duration)), .timestamp])
            let ticks = run.results[2].timestamp &- run.results[0].timestamp
            return (ticks, run.duration)
        }
        var estimates: [Double] = []
        for _ in 0..<max(rounds, 1) {
            let a = try stamped(short)
            let b = try stamped(long)
            let microseconds = VCPU.nanoseconds(b.host - a.host) / 1000
            guard microseconds > 0, b.ticks > a.ticks else { continue }
            estimates.append(Double(b.ticks - a.ticks) / microseconds)
        }
        guard !estimates.isEmpty else {
            throw .invalidArgument("the guest's TSC did not advance with its work: cannot time requests")
        }
        estimates.sort()
        let median = estimates[estimates.count / 2]
        return TSCCalibration(
            ticksPerMicrosecond: median, relativeSpread: (estimates[estimates.count - 1] - estimates[0]) / median)
    }
}
