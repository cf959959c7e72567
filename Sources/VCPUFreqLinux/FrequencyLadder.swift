/// Frequency tables for cpufreq drivers that list none. intel_pstate,
/// amd-pstate and cppc_cpufreq scale continuously between cpuinfo_min_freq
/// and cpuinfo_max_freq; a two-entry table would let the guest ask for the
/// extremes only, so the probe writes a ladder instead. Pure.
///
/// The step rule: the ladder holds cpuinfo_min_freq, every multiple of the
/// step strictly between the two, cpuinfo_max_freq, and the driver's named
/// operating points inside the range (intel_pstate's `base_frequency`,
/// amd-pstate's `amd_pstate_lowest_nonlinear_freq`). The step is the first
/// of 100, 200, 250, 500 MHz, 1 GHz (then doubling) that keeps the ladder
/// within 64 entries, the upstream guest driver's table limit. 100 MHz is one
/// Intel P-state ratio (the bus clock), and finer than a guest's schedutil
/// needs: a 400 MHz-4.7 GHz range becomes 44 entries.
public enum FrequencyLadder {
    /// The upstream virtual-cpufreq driver's table limit (`perftbl_len` ≤ 64).
    public static let maximumEntries = 64

    /// Steps tried in order, kHz; past the last, doubling.
    public static let stepsKHz = [100_000, 200_000, 250_000, 500_000, 1_000_000]

    /// The ladder from `minimumKHz` to `maximumKHz` with `namedKHz` points
    /// inside, and the step used. A range of one point (or a minimum at or
    /// above the maximum) gives `[maximumKHz]`.
    public static func ladder(minimumKHz: Int, maximumKHz: Int, namedKHz: [Int] = []) -> (table: [Int], stepKHz: Int?) {
        guard minimumKHz > 0, minimumKHz < maximumKHz else { return ([maximumKHz], nil) }
        let named = Set(namedKHz.filter { $0 > minimumKHz && $0 < maximumKHz })
        var step = stepsKHz[0]
        var index = 0
        while true {
            var points = named
            points.insert(minimumKHz)
            points.insert(maximumKHz)
            var value = (minimumKHz / step + 1) * step
            while value < maximumKHz && points.count <= maximumEntries {
                points.insert(value)
                value += step
            }
            if points.count <= maximumEntries { return (points.sorted(), step) }
            index += 1
            step = index < stepsKHz.count ? stepsKHz[index] : step * 2
        }
    }

    /// A listed table longer than the limit, cut to `count` entries spread
    /// evenly by index, keeping the first and the last.
    public static func thinned(_ table: [Int], to count: Int = maximumEntries) -> [Int] {
        guard table.count > count, count >= 2 else { return table }
        return (0..<count).map { table[($0 * (table.count - 1) + (count - 1) / 2) / (count - 1)] }
    }
}
