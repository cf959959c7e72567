/// Order statistics of a set of latencies, µs. Percentiles are nearest-rank
/// (the smallest value with at least p % of the samples at or below it):
/// every reported number is a measured sample, never an interpolation.
public struct LatencySummary: Sendable, Equatable, Codable {
    public var count: Int
    public var mean: Double
    public var min: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double

    public init(count: Int, mean: Double, min: Double, p50: Double, p90: Double, p99: Double, max: Double) {
        self.count = count
        self.mean = mean
        self.min = min
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
    }

    /// nil for no samples.
    public init?(_ samples: [Double]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        self.init(
            count: sorted.count, mean: sorted.reduce(0, +) / Double(sorted.count), min: sorted[0],
            p50: Self.percentile(50, of: sorted), p90: Self.percentile(90, of: sorted),
            p99: Self.percentile(99, of: sorted), max: sorted[sorted.count - 1])
    }

    /// Points of the distribution kept in the results.
    public static let quantileCount = 200

    /// The nearest-rank values at fractions 1/`count` … 1 (empty for no samples).
    public static func quantiles(_ samples: [Double], count: Int = quantileCount) -> [Double] {
        guard !samples.isEmpty, count > 0 else { return [] }
        let sorted = samples.sorted()
        // Rank ⌈i × n / count⌉ in integers: no rounding error at exact fractions.
        return (1...count).map { sorted[Swift.max((($0 * sorted.count) + count - 1) / count, 1) - 1] }
    }

    /// Nearest rank: the value at rank ⌈p/100 × n⌉ (1-based) of `sorted`.
    public static func percentile(_ p: Double, of sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        // The epsilon keeps an exact fraction (p × n / 100 = 7.000000001) on its rank.
        let rank = Int((p / 100 * Double(sorted.count) - 1e-9).rounded(.up))
        return sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1]
    }
}
