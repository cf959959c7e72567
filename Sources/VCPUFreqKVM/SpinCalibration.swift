/// What one iteration of the guest's `spin` op costs, measured on a vCPU
/// (`VCPU.calibrateSpin`), so scripts can ask for "this much work".
public struct SpinCalibration: Sendable, Equatable {
    public var nanosecondsPerIteration: Double

    public init(nanosecondsPerIteration: Double) {
        self.nanosecondsPerIteration = nanosecondsPerIteration
    }

    /// Spin iterations that take about `duration`.
    public func iterations(for duration: Duration) -> UInt64 {
        guard nanosecondsPerIteration > 0 else { return 0 }
        let (seconds, attoseconds) = duration.components
        let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
        return UInt64(max(0, min(nanoseconds / nanosecondsPerIteration, 1e18)))
    }
}
