/// How long a thread waited between becoming runnable (woken, or preempted
/// while still runnable) and running again, as the BPF programs record it: a
/// log2 histogram in microseconds plus the exact sum and count.
///
/// Bucket 0 holds delays of 0..<2 µs; bucket i (1 ≤ i < 31) holds
/// 2^i ..< 2^(i+1) µs; bucket 31 holds everything from 2^31 µs on.
public struct RunDelayHistogram: Equatable, Sendable {
    /// VCPUFREQ_DELAY_BUCKETS of vcpufreq_bpf.h.
    public static let bucketCount = 32

    /// Delays per bucket; always `bucketCount` entries.
    public private(set) var buckets: [UInt64]
    /// Sum of all delays, ns.
    public var sumNanoseconds: UInt64
    /// Number of delays measured.
    public var count: UInt64

    /// `buckets` is padded with zeros or cut to `bucketCount` entries.
    public init(buckets: [UInt64] = [], sumNanoseconds: UInt64 = 0, count: UInt64 = 0) {
        var padded = Array(buckets.prefix(Self.bucketCount))
        padded += repeatElement(0, count: Self.bucketCount - padded.count)
        self.buckets = padded
        self.sumNanoseconds = sumNanoseconds
        self.count = count
    }

    /// The range of delays bucket `index` counts, µs; the last bucket's upper
    /// bound is UInt64.max.
    public static func bucketRangeMicroseconds(_ index: Int) -> Range<UInt64> {
        let index = min(max(index, 0), bucketCount - 1)
        let lower: UInt64 = index == 0 ? 0 : 1 << UInt64(index)
        let upper: UInt64 = index == bucketCount - 1 ? .max : 1 << UInt64(index + 1)
        return lower..<upper
    }

    /// The bucket a delay of `microseconds` falls into (what the BPF program computes).
    public static func bucket(forMicroseconds microseconds: UInt64) -> Int {
        guard microseconds > 1 else { return 0 }
        return min(63 - microseconds.leadingZeroBitCount, bucketCount - 1)
    }

    /// Total of the bucket counts (equals `count` once the programs are quiet;
    /// a read racing an update may see them differ by one).
    public var bucketTotal: UInt64 { buckets.reduce(0, &+) }

    /// The bucket holding the `fraction` quantile (0...1) of the recorded
    /// delays, or nil when nothing was recorded.
    public func quantileBucket(_ fraction: Double) -> Int? {
        let total = bucketTotal
        guard total > 0 else { return nil }
        let clamped = min(max(fraction, 0), 1)
        // Rank of the quantile, 1-based: ceil(fraction * total), at least 1.
        let rank = max(1, UInt64((clamped * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, value) in buckets.enumerated() {
            seen &+= value
            if seen >= rank { return index }
        }
        return Self.bucketCount - 1
    }

    /// Upper bound (exclusive, µs) of the bucket holding the `fraction`
    /// quantile: "`fraction` of the delays were below this".
    public func quantileUpperBoundMicroseconds(_ fraction: Double) -> UInt64? {
        quantileBucket(fraction).map { Self.bucketRangeMicroseconds($0).upperBound }
    }

    /// Median bucket's upper bound, µs.
    public var p50Microseconds: UInt64? { quantileUpperBoundMicroseconds(0.50) }
    /// 99th percentile bucket's upper bound, µs.
    public var p99Microseconds: UInt64? { quantileUpperBoundMicroseconds(0.99) }

    /// Mean delay, ns (0 when nothing was recorded).
    public var meanNanoseconds: UInt64 { count == 0 ? 0 : sumNanoseconds / count }
}
