import Testing

@testable import VCPUFreqBenchSupport

/// The histogram against the exact nearest-rank percentile of the sorted
/// samples: within the documented precision (half a bucket, 1/256 of the
/// value above 256 ns; exact below).
@Suite struct LatencyHistogramTests {
    /// A small deterministic generator (SplitMix64), so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Nearest rank: the smallest sample with at least `fraction` of all at or below it.
    static func exactPercentile(_ sorted: [UInt64], _ fraction: Double) -> UInt64 {
        let rank = max(1, Int((fraction * Double(sorted.count)).rounded(.up)))
        return sorted[rank - 1]
    }

    static let ranges: [(seed: UInt64, range: ClosedRange<UInt64>)] = [
        (1, 0...255), (2, 1_000...100_000), (3, 10_000...50_000_000), (4, 0...(1 << 40)),
    ]

    @Test(arguments: ranges)
    func percentilesMatchSortedSamples(seed: UInt64, range: ClosedRange<UInt64>) {
        var random = SplitMix(state: seed)
        var histogram = LatencyHistogram()
        var samples: [UInt64] = []
        for _ in 0..<5000 {
            let value = UInt64.random(in: range, using: &random)
            samples.append(value)
            histogram.record(value)
        }
        samples.sort()
        #expect(histogram.count == 5000)
        #expect(histogram.minimum == samples.first)
        #expect(histogram.maximum == samples.last)
        for fraction in [0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let exact = Self.exactPercentile(samples, fraction)
            guard let estimate = histogram.percentile(fraction) else {
                Issue.record("no percentile")
                return
            }
            let error = estimate > exact ? estimate - exact : exact - estimate
            // Half a bucket: exact below 256 ns, else at most value/256.
            let allowed = exact < 256 ? 0 : exact / 256 + 1
            #expect(error <= allowed, "p\(fraction * 100): \(estimate) vs exact \(exact)")
        }
    }

    @Test func bucketsTileTheValues() {
        var random = SplitMix(state: 7)
        var values: [UInt64] = Array(0...300) + [UInt64.max, 1 << 63, (1 << 40) - 1, 1 << 40]
        for _ in 0..<2000 { values.append(random.next() >> UInt64.random(in: 0...63, using: &random)) }
        for value in values {
            let bucket = LatencyHistogram.bucket(of: value)
            #expect(bucket >= 0 && bucket < LatencyHistogram.bucketCount)
            let (lower, width) = LatencyHistogram.range(of: bucket)
            #expect(lower <= value)
            #expect(value - lower < width, "\(value) outside bucket \(bucket) [\(lower), +\(width))")
            // 128 buckets per power of two: a bucket is at most 1/128 of its values.
            if value >= 256 { #expect(width <= lower / 128) }
        }
    }

    @Test func emptyHasNoPercentiles() {
        let histogram = LatencyHistogram()
        #expect(histogram.percentile(0.5) == nil)
        #expect(histogram.summary == nil)
    }

    @Test func summaryIsInMicroseconds() throws {
        var histogram = LatencyHistogram()
        for value in [100_000, 100_000, 100_000, 200_000] as [UInt64] { histogram.record(value) }
        let summary = try #require(histogram.summary)
        #expect(summary.samples == 4)
        #expect(abs(summary.p50Microseconds - 100) <= 100.0 / 256)
        #expect(abs(summary.maxMicroseconds - 200) < 1e-9)
        #expect(abs(summary.meanMicroseconds - 125) < 1e-9)
    }
}
