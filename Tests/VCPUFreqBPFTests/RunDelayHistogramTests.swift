import Testing

@testable import VCPUFreqBPF

@Suite struct RunDelayHistogramTests {
    /// The bucket by definition (docs/bpf.md): 0 for 0..<2 µs, else the
    /// largest i with 2^i ≤ µs, at most 31. Computed by search, not by bit tricks.
    static func referenceBucket(_ microseconds: UInt64) -> Int {
        var bucket = 0
        var power: UInt64 = 2
        while bucket < 31 && power <= microseconds {
            bucket += 1
            if power > UInt64.max / 2 { break }
            power *= 2
        }
        return bucket
    }

    @Test(
        "bucket of a delay",
        arguments: [
            (0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (7, 2), (8, 3), (1023, 9), (1024, 10), (1_500, 10),
            (65_535, 15), (65_536, 16), (1 << 31 - 1, 30), (1 << 31, 31), (1 << 40, 31), (UInt64.max, 31),
        ] as [(UInt64, Int)])
    func bucketTable(microseconds: UInt64, expected: Int) {
        #expect(RunDelayHistogram.bucket(forMicroseconds: microseconds) == expected)
        #expect(Self.referenceBucket(microseconds) == expected)
    }

    @Test("bucket formula equals the definition around every power of two")
    func bucketAroundPowers() {
        for shift in 0..<64 {
            let power = UInt64(1) << UInt64(shift)
            for value in [power &- 1, power, power &+ 1] {
                #expect(RunDelayHistogram.bucket(forMicroseconds: value) == Self.referenceBucket(value), "\(value)")
            }
        }
    }

    @Test("bucket ranges are contiguous, start at 0 and end at UInt64.max, and hold their delays")
    func ranges() {
        var expectedLower: UInt64 = 0
        for index in 0..<RunDelayHistogram.bucketCount {
            let range = RunDelayHistogram.bucketRangeMicroseconds(index)
            #expect(range.lowerBound == expectedLower)
            #expect(RunDelayHistogram.bucket(forMicroseconds: range.lowerBound) == index)
            #expect(RunDelayHistogram.bucket(forMicroseconds: range.upperBound - 1) == index)
            expectedLower = range.upperBound
        }
        #expect(expectedLower == UInt64.max)
    }

    /// (buckets as index: count, fraction, expected bucket), worked by hand:
    /// the quantile is the first bucket whose running total reaches
    /// ceil(fraction × total).
    @Test(
        "quantile bucket",
        arguments: [
            ([3: 10, 12: 1], 0.50, 3),  // rank 6 of 11
            ([3: 10, 12: 1], 0.90, 3),  // rank 10 (9.9 rounded up)
            ([3: 10, 12: 1], 0.99, 12),  // rank 11
            ([3: 10, 12: 1], 0.0, 3),  // rank at least 1
            ([3: 10, 12: 1], 1.0, 12),
            ([0: 1, 5: 1, 9: 1, 20: 1], 0.50, 5),  // rank 2 of 4
            ([0: 1, 5: 1, 9: 1, 20: 1], 0.75, 9),  // rank 3
            ([0: 1, 5: 1, 9: 1, 20: 1], 0.76, 20),  // rank 4 (3.04 rounded up)
            ([31: 2], 0.5, 31),
        ] as [([Int: UInt64], Double, Int)])
    func quantiles(counts: [Int: UInt64], fraction: Double, expected: Int) {
        var buckets = [UInt64](repeating: 0, count: RunDelayHistogram.bucketCount)
        for (index, count) in counts { buckets[index] = count }
        let histogram = RunDelayHistogram(buckets: buckets, sumNanoseconds: 0, count: counts.values.reduce(0, +))
        #expect(histogram.quantileBucket(fraction) == expected)
        #expect(
            histogram.quantileUpperBoundMicroseconds(fraction)
                == RunDelayHistogram.bucketRangeMicroseconds(expected).upperBound)
    }

    @Test("an empty histogram has no quantiles; short and long bucket arrays are normalised")
    func emptyAndPadding() {
        #expect(RunDelayHistogram().quantileBucket(0.5) == nil)
        #expect(RunDelayHistogram().p99Microseconds == nil)
        #expect(RunDelayHistogram().meanNanoseconds == 0)
        #expect(RunDelayHistogram(buckets: [1, 2]).buckets.count == RunDelayHistogram.bucketCount)
        #expect(RunDelayHistogram(buckets: Array(repeating: 1, count: 40)).bucketTotal == 32)
        #expect(RunDelayHistogram(buckets: [], sumNanoseconds: 3_000, count: 2).meanNanoseconds == 1_500)
    }
}

/// Whether a histogram the BPF program filled is consistent with the bucket
/// ranges defined here: the exact sum must lie between what the counts allow.
/// (Checks the program's log2 against the Swift definition on real data.)
func sumFitsBuckets(_ histogram: RunDelayHistogram) -> Bool {
    var low: UInt64 = 0
    var high: UInt64 = 0
    for (index, count) in histogram.buckets.enumerated() where count > 0 {
        let range = RunDelayHistogram.bucketRangeMicroseconds(index)
        low = low &+ count &* range.lowerBound &* 1_000
        high = range.upperBound == .max ? .max : high &+ count &* range.upperBound &* 1_000
    }
    return histogram.sumNanoseconds >= low && histogram.sumNanoseconds <= high
}
