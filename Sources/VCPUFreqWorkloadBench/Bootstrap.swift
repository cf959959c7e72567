/// Percentile bootstrap over rounds: resample the rounds with replacement
/// (pairs stay together: round r of a configuration and of the baseline ran
/// the same programs back to back), compute the statistic on each
/// resample, and keep the 2.5th and 97.5th percentiles (nearest rank).
/// Seeded, so a report renders the same interval from the same data. Pure.
public enum Bootstrap {
    /// Resamples a report uses per interval.
    public static let defaultResamples = 4000

    /// The 95 % interval of `statistic` over resamples of `count` rounds
    /// (the closure gets the resampled round indices; resamples where it
    /// returns nil are dropped); nil with fewer than 2 rounds.
    public static func interval(
        count: Int, resamples: Int = defaultResamples, seed: UInt64, statistic: ([Int]) -> Double?
    ) -> ClosedRange<Double>? {
        guard count >= 2, resamples > 0 else { return nil }
        var random = SplitMix64(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        var indices = [Int](repeating: 0, count: count)
        for _ in 0..<resamples {
            for slot in 0..<count { indices[slot] = Int(random.next() % UInt64(count)) }
            if let value = statistic(indices), value.isFinite { values.append(value) }
        }
        guard !values.isEmpty else { return nil }
        values.sort()
        func rank(_ fraction: Double) -> Double {
            let index = Int((fraction * Double(values.count)).rounded(.up)) - 1
            return values[min(max(index, 0), values.count - 1)]
        }
        return rank(0.025)...rank(0.975)
    }

    /// % change of the mean of `values` over the mean of `reference` (paired
    /// by index): 100 × (Σ values ÷ Σ reference − 1); nil when the reference sums to 0.
    public static func percentChange(_ values: [Double], _ reference: [Double], at indices: [Int]? = nil) -> Double? {
        let picked = indices ?? Array(values.indices)
        var top = 0.0
        var bottom = 0.0
        for index in picked {
            top += values[index]
            bottom += reference[index]
        }
        guard bottom != 0 else { return nil }
        return 100 * (top / bottom - 1)
    }

    public static func mean(_ values: [Double], at indices: [Int]? = nil) -> Double? {
        let picked = indices ?? Array(values.indices)
        guard !picked.isEmpty else { return nil }
        return picked.reduce(0) { $0 + values[$1] } / Double(picked.count)
    }
}
