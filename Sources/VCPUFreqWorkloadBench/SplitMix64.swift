/// The benchmark's random numbers: SplitMix64 (Vigna), so that a seed gives
/// the same programs and the same bootstrap on every machine and Swift
/// version (the standard library's generator is not seedable).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [low, high) (low when the range is empty).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        guard high > low else { return low }
        return low + (high - low) * Double(next() >> 11) / Double(1 << 53)
    }

    /// Uniform in low...high.
    public mutating func integer(_ low: Int, _ high: Int) -> Int {
        guard high > low else { return low }
        return low + Int(next() % UInt64(high - low + 1))
    }

    /// A seed derived from `seed` and `parts` (one stream per test, round and vCPU).
    public static func derive(_ seed: UInt64, _ parts: UInt64...) -> UInt64 {
        var generator = SplitMix64(seed: seed)
        var value = generator.next()
        for part in parts {
            generator = SplitMix64(seed: value ^ (part &* 0xD6E8_FEB8_6659_FD93))
            value = generator.next()
        }
        return value
    }
}
