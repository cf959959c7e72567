/// The scheduler's knobs (map "sched_config" of bpf/vcpufreq_sched.bpf.c;
/// docs/scheduler.md). Defaults are the header's VCPUFREQ_SCHED_DEFAULT_*.
public struct SchedulerSettings: Equatable, Sendable {
    /// Slice of every task, µs. Within `sliceRange`.
    public var sliceMicroseconds: UInt32 = 5000
    /// Longest boost of a latency-flagged vCPU thread, µs; 0 = the hint's own
    /// `slice_us`, which is the VM policy's `latency_slice_us`.
    public var boostMicroseconds: UInt32 = 0
    /// A boost when `boostMicroseconds` is 0 and the hint carries no slice, µs.
    public var defaultBoostMicroseconds: UInt32 = 500
    /// Boost credit refill, per mille of wall time: the long-run share of a
    /// CPU a thread may hold boosted (plus a burst of two boosts).
    public var boostSharePermille: UInt32 = 250

    /// The kernel's EEVDF slice bounds (0.1 ms ... 100 ms), kept for ours.
    public static let sliceRange: ClosedRange<UInt32> = 100...100_000
    /// A boost is bounded by a slice at most.
    public static let boostRange: ClosedRange<UInt32> = 0...100_000
    public static let shareRange: ClosedRange<UInt32> = 0...1000

    public init() {}

    /// Why these settings cannot be used, naming the field; nil when they can.
    public var problem: String? {
        if !Self.sliceRange.contains(sliceMicroseconds) {
            return "slice \(sliceMicroseconds) µs is outside \(Self.sliceRange.lowerBound)...\(Self.sliceRange.upperBound)"
        }
        if !Self.boostRange.contains(boostMicroseconds) {
            return "boost \(boostMicroseconds) µs is outside 0...\(Self.boostRange.upperBound)"
        }
        if defaultBoostMicroseconds == 0 || !Self.boostRange.contains(defaultBoostMicroseconds) {
            return "default boost \(defaultBoostMicroseconds) µs is outside 1...\(Self.boostRange.upperBound)"
        }
        if !Self.shareRange.contains(boostSharePermille) {
            return "boost share \(boostSharePermille) ‰ is outside 0...1000"
        }
        return nil
    }
}
