/// CLOCK_MONOTONIC, the clock of timer deadlines and journal timestamps.
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary boot-time origin; never goes back.
    public static func nowNanoseconds() -> UInt64 { system_monotonic_ns() }
}
