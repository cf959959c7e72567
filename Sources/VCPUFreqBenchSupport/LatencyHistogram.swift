/// A log-linear histogram of durations in nanoseconds (the HdrHistogram
/// idea): exact below 256 ns, then 128 buckets per power of two, so every
/// recorded value is known within 1/128 (0.8 %) of itself. Fixed storage,
/// allocated once, so recording costs a few instructions and never
/// allocates — the generator records millions of samples per run.
public struct LatencyHistogram: Sendable {
    /// Values below this are their own bucket.
    static let exactLimit: UInt64 = 256
    /// Buckets per power of two above `exactLimit` (7 bits of mantissa).
    static let subBuckets = 128
    static let mantissaBits = 7
    /// Enough buckets for any UInt64 value.
    static let bucketCount = Int(exactLimit) + (64 - mantissaBits - 1) * subBuckets

    private var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var minimum: UInt64 = .max
    public private(set) var maximum: UInt64 = 0
    private var sum: Double = 0

    public init() {
        counts = Array(repeating: 0, count: Self.bucketCount)
    }

    /// The bucket of `value`.
    static func bucket(of value: UInt64) -> Int {
        guard value >= exactLimit else { return Int(value) }
        let exponent = (63 - value.leadingZeroBitCount) - mantissaBits  // ≥ 1
        let mantissa = Int(value >> UInt64(exponent)) - subBuckets  // 0..<128
        return Int(exactLimit) + (exponent - 1) * subBuckets + mantissa
    }

    /// The smallest value of bucket `index` and the bucket's width.
    static func range(of index: Int) -> (lower: UInt64, width: UInt64) {
        guard index >= Int(exactLimit) else { return (UInt64(index), 1) }
        let relative = index - Int(exactLimit)
        let exponent = relative / subBuckets + 1
        let mantissa = UInt64(relative % subBuckets + subBuckets)
        return (mantissa << UInt64(exponent), 1 << UInt64(exponent))
    }

    public mutating func record(_ nanoseconds: UInt64) {
        counts[Self.bucket(of: nanoseconds)] &+= 1
        count &+= 1
        minimum = min(minimum, nanoseconds)
        maximum = max(maximum, nanoseconds)
        sum += Double(nanoseconds)
    }

    /// Adds every sample of `other`.
    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for index in counts.indices where other.counts[index] > 0 { counts[index] &+= other.counts[index] }
        count &+= other.count
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        sum += other.sum
    }

    /// The nearest-rank percentile (`fraction` in 0...1): the value below
    /// or at which `fraction` of the samples lie, as the middle of its bucket
    /// (clamped to the recorded extremes). nil when empty.
    public func percentile(_ fraction: Double) -> UInt64? {
        guard count > 0 else { return nil }
        let clamped = min(max(fraction, 0), 1)
        let rank = max(1, UInt64((clamped * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for index in counts.indices where counts[index] > 0 {
            seen += counts[index]
            if seen >= rank {
                let (lower, width) = Self.range(of: index)
                return min(max(lower + (width - 1) / 2, minimum), maximum)
            }
        }
        return maximum
    }

    public var mean: Double? { count > 0 ? sum / Double(count) : nil }

    /// The usual summary, in microseconds.
    public var summary: HistogramSummary? {
        guard count > 0, let p50 = percentile(0.5), let p90 = percentile(0.9), let p99 = percentile(0.99),
            let p999 = percentile(0.999), let mean
        else { return nil }
        return HistogramSummary(
            samples: count, p50Microseconds: Double(p50) / 1000, p90Microseconds: Double(p90) / 1000,
            p99Microseconds: Double(p99) / 1000, p999Microseconds: Double(p999) / 1000,
            maxMicroseconds: Double(maximum) / 1000, meanMicroseconds: mean / 1000)
    }
}

/// Percentiles of one latency measurement from a `LatencyHistogram`, µs
/// (`LatencySummary` is the same from the samples themselves).
public struct HistogramSummary: Codable, Equatable, Sendable {
    public var samples: UInt64
    public var p50Microseconds: Double
    public var p90Microseconds: Double
    public var p99Microseconds: Double
    public var p999Microseconds: Double
    public var maxMicroseconds: Double
    public var meanMicroseconds: Double
}
