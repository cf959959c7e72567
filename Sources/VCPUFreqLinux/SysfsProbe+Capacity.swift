import VCPUFreqCore

// MARK: Capacities and tables

/// Capacity, in order of preference:
///
/// 1. `cpuN/cpu_capacity`, the kernel's own value (arm, arm64, riscv: from
///    capacity-dmips-mhz or ACPI CPPC). A group takes the highest of its CPUs.
/// 2. Without it (x86 never has the file: drivers/base/arch_topology.c is not
///    built there, and the hybrid capacity intel_pstate gives the scheduler
///    since Linux 6.12 is not exported): for intel_pstate, when every CPU has
///    `acpi_cppc/highest_perf`, capacity = 1024 × highest_perf / the largest.
///    HWP performance units are comparable across P- and E-cores (an E-core
///    does less per clock, so its share is below its frequency ratio), and
///    intel_pstate computes the scheduler's hybrid capacity the same way.
/// 3. Otherwise capacity = 1024 × the group's maximum frequency / the
///    fastest maximum (cpuinfo_max_freq), assuming equal work per clock. This
///    is right for amd-pstate: Zen 5c runs Zen 5's core at lower clocks, and
///    `acpi_cppc/highest_perf` and `amd_pstate_prefcore_ranking` are
///    preferred-core ranks there, not performance.
/// 4. With no frequency either, 1024.
extension SysfsProbe {
    /// Capacity assumed for a CPU nothing else describes: the kernel's SCHED_CAPACITY_SCALE.
    public static let defaultCapacity = 1024

    static func capacities(of groups: [Group], notes: inout [String]) -> [Int] {
        let cpus = groups.flatMap(\.cpus)
        if cpus.contains(where: { $0.capacity != nil }) {
            var assumed: [Int] = []
            let capacities = groups.map { group -> Int in
                let values = Set(group.cpus.compactMap(\.capacity))
                guard let capacity = values.max() else {
                    assumed += group.cpus.map(\.id)
                    return defaultCapacity
                }
                if values.count > 1 {
                    notes.append(
                        "CPUs \(CPUList(group.cpus.map(\.id))) share a policy or cluster but report capacities "
                            + "\(values.sorted().map(String.init).joined(separator: ", ")): used \(capacity)")
                }
                return capacity
            }
            if !assumed.isEmpty { notes.append("no cpu_capacity for CPU \(CPUList(assumed)): assumed \(defaultCapacity)") }
            return capacities
        }

        let everyCPU = CPUList(cpus.map(\.id))
        let performance = groups.map { group in group.cpus.compactMap { $0.cppc?.highestPerformance }.filter { $0 > 0 }.max() }
        let byPerformance = groups.allSatisfy { $0.policy?.isIntelPState == true }
            && cpus.allSatisfy { ($0.cppc?.highestPerformance ?? 0) > 0 }
        let maxima = groups.map { $0.policy.flatMap(maximumFrequencyKHz) }
        let (values, source, unit): ([Int?], String, String) =
            byPerformance
            ? (performance, "acpi_cppc/highest_perf (HWP performance units, comparable across core types; intel_pstate "
                + "gives the scheduler these ratios on hybrid parts since Linux 6.12)", "")
            : (maxima, "each cluster's maximum frequency (cpuinfo_max_freq), assuming equal work per clock", " kHz")
        guard let top = values.compactMap({ $0 }).max(), values.allSatisfy({ $0 != nil }), top > 0 else {
            notes.append("no cpu_capacity for CPU \(everyCPU): assumed \(defaultCapacity)")
            return groups.map { _ in defaultCapacity }
        }
        let capacities = values.map { max(1, ((1024 * ($0 ?? 0)) + top / 2) / top) }
        if Set(capacities).count == 1 {
            notes.append("no cpu_capacity for CPU \(everyCPU): assumed \(defaultCapacity) (every CPU reaches the same maximum)")
            return capacities
        }
        var rows: [(value: Int, capacity: Int, cpus: [Int])] = []
        for (group, (value, capacity)) in zip(groups, zip(values, capacities)) {
            if let index = rows.firstIndex(where: { $0.capacity == capacity && $0.value == value }) {
                rows[index].cpus += group.cpus.map(\.id)
            } else {
                rows.append((value ?? 0, capacity, group.cpus.map(\.id)))
            }
        }
        let listed = rows.sorted { $0.capacity > $1.capacity }
            .map { "CPUs \(CPUList($0.cpus)): \($0.value)\(unit) -> \($0.capacity)" }.joined(separator: ", ")
        notes.append("no cpu_capacity (x86 has none): capacities from \(source), the highest = 1024: \(listed)")
        return capacities
    }

    /// cpuinfo_max_freq, else amd_pstate_max_freq, else the top of the listed table.
    static func maximumFrequencyKHz(_ policy: SysfsPolicy) -> Int? {
        [policy.maximumFrequencyKHz, policy.amdPState?.maximumFrequencyKHz, policy.availableFrequenciesKHz?.last]
            .compactMap { $0 }.first { $0 > 0 }
    }

    /// What `table(of:)` did beyond copying a listed table, said once for all policies.
    struct LadderNote {
        var drivers: Set<String> = []
        var steps: Set<Int> = []
        var named: Set<String> = []
        var thinned: [(from: Int, cpus: CPUList)] = []

        var notes: [String] {
            var notes: [String] = []
            if !steps.isEmpty || !drivers.isEmpty {
                let driver = drivers.isEmpty ? "the cpufreq driver" : drivers.sorted().joined(separator: ", ")
                let stepText = steps.sorted().map { $0 % 1000 == 0 ? "\($0 / 1000) MHz" : "\($0) kHz" }.joined(separator: ", ")
                let extras = named.isEmpty ? "" : ", plus \(named.sorted().joined(separator: " and "))"
                notes.append(
                    "\(driver) lists no frequencies (it scales continuously): each table is a ladder from cpuinfo_min_freq "
                        + "to cpuinfo_max_freq in \(stepText) steps\(extras)")
            }
            for entry in thinned {
                notes.append(
                    "the policy of CPUs \(entry.cpus) lists \(entry.from) frequencies: kept \(FrequencyLadder.maximumEntries) "
                        + "spread evenly (the guest driver's limit)")
            }
            return notes
        }
    }

    /// The policy's frequency table: the listed frequencies (at most 64,
    /// thinned evenly beyond), else a `FrequencyLadder` between the cpuinfo
    /// bounds, else the maximum alone, else nil.
    static func table(of policy: SysfsPolicy, notes: inout LadderNote) -> [Int]? {
        if let listed = policy.availableFrequenciesKHz, !listed.isEmpty {
            if listed.count > FrequencyLadder.maximumEntries {
                notes.thinned.append((listed.count, policy.relatedCPUs))
                return FrequencyLadder.thinned(listed)
            }
            return listed
        }
        guard let maximum = maximumFrequencyKHz(policy) else { return nil }
        guard let minimum = policy.minimumFrequencyKHz, minimum > 0, minimum < maximum else { return [maximum] }
        var named: [(String, Int)] = []
        if let base = policy.baseFrequencyKHz { named.append(("base_frequency", base)) }
        if let knee = policy.amdPState?.lowestNonlinearFrequencyKHz { named.append(("amd_pstate_lowest_nonlinear_freq", knee)) }
        let (table, step) = FrequencyLadder.ladder(minimumKHz: minimum, maximumKHz: maximum, namedKHz: named.map(\.1))
        if let step { notes.steps.insert(step) }
        if let driver = policy.driver { notes.drivers.insert(driver) }
        for (name, value) in named where table.contains(value) && value > minimum && value < maximum { notes.named.insert(name) }
        return table
    }

    /// amd-pstate preferred cores (Linux 6.9+): the rankings, said once. They
    /// change at runtime and are scheduling preferences, not capacities.
    static func preferredCoreNote(_ cpus: [SysfsCPU]) -> String? {
        let ranked = cpus.compactMap { cpu -> (Int, Int)? in
            guard let amd = cpu.policy?.amdPState, amd.hardwarePreferredCore == true, let rank = amd.preferredCoreRanking else { return nil }
            return (cpu.id, rank)
        }
        let ranks = Set(ranked.map(\.1))
        guard let top = ranks.max(), let bottom = ranks.min(), ranks.count > 1 else { return nil }
        let best = CPUList(ranked.filter { $0.1 == top }.map(\.0))
        return "amd-pstate preferred cores: amd_pstate_prefcore_ranking \(bottom)...\(top), CPUs \(best) rank highest; "
            + "the platform changes rankings at runtime and they are not capacities, so they do not split clusters"
    }
}
