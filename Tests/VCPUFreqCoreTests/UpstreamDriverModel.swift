@testable import VCPUFreqCore

/// A faithful model of the guest side of ABI 1: Linux's
/// drivers/cpufreq/virtual-cpufreq.c (6.13) and the parts of the cpufreq core
/// and schedutil it relies on. It talks to a `DeviceModel` only through
/// 32-bit `GuestAccess`es, as readl_relaxed/writel_relaxed would.
///
/// The register offsets are the driver's own #defines, written out here on
/// purpose instead of taken from `UpstreamABI`, so a wrong constant on the
/// device side cannot hide behind the same wrong constant in the test.
struct UpstreamDriverModel {
    static let regCurPerfStateOffset: UInt64 = 0x0
    static let regSetPerfStateOffset: UInt64 = 0x4
    static let regPerftblLenOffset: UInt64 = 0x8
    static let regPerftblSelOffset: UInt64 = 0xc
    static let regPerftblRdOffset: UInt64 = 0x10
    static let regPerfDomainOffset: UInt64 = 0x14
    static let perCPUOffset: UInt64 = 0x1000
    static let perftblMaxEntries: UInt32 = 64
    /// SCHED_CAPACITY_SHIFT / SCHED_CAPACITY_SCALE.
    static let schedCapacityShift: UInt64 = 10
    static let schedCapacityScale: UInt64 = 1024

    /// What cpufreq_online() leaves in a policy after ->init().
    struct Policy: Equatable, CustomStringConvertible {
        /// policy->cpu: the CPU whose init built the policy, whose window set_perf goes to.
        var cpu: Int
        /// policy->cpus, ascending.
        var cpus: [Int]
        /// policy->freq_table without CPUFREQ_TABLE_END; nil in the driver's no-table mode.
        var table: [UInt32]?
        /// policy->cpuinfo.min_freq / max_freq (the core derives them from the table).
        var minKHz: UInt32
        var maxKHz: UInt32

        var description: String { "cpu\(cpu) cpus=\(cpus) table=\(table.map { "\($0)" } ?? "none") \(minKHz)...\(maxKHz)" }
    }

    /// virt_cpufreq_driver_probe() returning -ENODEV.
    struct ProbeFailure: Error, Equatable {
        var cpu: Int
        var entries: UInt32
    }

    var device: DeviceModel
    /// The per-CPU perftbl_num_entries the probe stores.
    var perftblNumEntries: [UInt32] = []
    var policies: [Policy] = []
    /// Every request the device produced while the driver ran.
    var requests: [GuestRequest] = []

    init(device: DeviceModel) {
        self.device = device
    }

    // MARK: MMIO as the driver issues it

    /// readl_relaxed(base + cpu * PER_CPU_OFFSET + reg), executed on `executing`.
    mutating func readl(window cpu: Int, _ register: UInt64, executing: Int) -> UInt32 {
        let result = device.access(.read(vcpu: executing, offset: UInt64(cpu) * Self.perCPUOffset + register, width: 4))
        return UInt32(truncatingIfNeeded: result.value)
    }

    /// writel_relaxed(value, base + cpu * PER_CPU_OFFSET + reg), executed on `executing`.
    @discardableResult
    mutating func writel(_ value: UInt32, window cpu: Int, _ register: UInt64, executing: Int) -> AccessResult {
        let result = device.access(
            .write(vcpu: executing, offset: UInt64(cpu) * Self.perCPUOffset + register, width: 4, value: UInt64(value)))
        if let request = result.request { requests.append(request) }
        return result
    }

    // MARK: Probe and init

    /// virt_cpufreq_driver_probe(): for_each_possible_cpu reads perftbl_len
    /// and fails on 0 or > PERFTBL_MAX_ENTRIES; then the cpufreq core brings
    /// CPUs online in order and calls ->init() for each CPU not yet covered
    /// by a policy (cpufreq_online()).
    mutating func probeAndInit(possibleCPUs: Int, bootCPU: Int = 0) throws(ProbeFailure) {
        perftblNumEntries = []
        for cpu in 0..<possibleCPUs {
            let entries = readl(window: cpu, Self.regPerftblLenOffset, executing: bootCPU)
            if entries == 0 || entries > Self.perftblMaxEntries { throw ProbeFailure(cpu: cpu, entries: entries) }
            perftblNumEntries.append(entries)
        }
        policies = []
        for cpu in 0..<possibleCPUs where !policies.contains(where: { $0.cpus.contains(cpu) }) {
            policies.append(cpuInit(cpu: cpu, presentCPUs: possibleCPUs))
        }
    }

    /// virt_cpufreq_cpu_init(): get_freq_info, then get_sharing_cpus. It runs
    /// on the CPU being brought online.
    mutating func cpuInit(cpu: Int, presentCPUs: Int) -> Policy {
        var policy = Policy(cpu: cpu, cpus: [], table: nil, minKHz: 0, maxKHz: 0)
        // virt_cpufreq_get_freq_info()
        let entries = perftblNumEntries[cpu]
        if entries == 1 {
            policy.minKHz = 1
            policy.maxKHz = perftblEntry(cpu: cpu, index: 0)
        } else {
            var table: [UInt32] = []
            for index in 0..<entries { table.append(perftblEntry(cpu: cpu, index: index)) }
            policy.table = table
            // cpufreq_table_validate_and_sort(): cpuinfo limits from the table.
            policy.minKHz = table.min() ?? 0
            policy.maxKHz = table.max() ?? 0
        }
        // virt_cpufreq_get_sharing_cpus()
        let ownDomain = readl(window: cpu, Self.regPerfDomainOffset, executing: cpu)
        for other in 0..<presentCPUs where readl(window: other, Self.regPerfDomainOffset, executing: cpu) == ownDomain {
            policy.cpus.append(other)
        }
        return policy
    }

    /// virt_cpufreq_get_perftbl_entry(): select, then read.
    mutating func perftblEntry(cpu: Int, index: UInt32) -> UInt32 {
        writel(index, window: cpu, Self.regPerftblSelOffset, executing: cpu)
        return readl(window: cpu, Self.regPerftblRdOffset, executing: cpu)
    }

    // MARK: Frequency selection (cpufreq core + schedutil)

    /// cpufreq_driver_resolve_freq(): clamp to policy min/max, then with a
    /// table the lowest entry at or above the target (CPUFREQ_RELATION_L;
    /// the _E variant changes nothing without efficient-frequency marks).
    static func resolveFrequency(_ policy: Policy, targetKHz: UInt64) -> UInt32 {
        let clamped = UInt32(min(max(targetKHz, UInt64(policy.minKHz)), UInt64(policy.maxKHz)))
        guard let table = policy.table else { return clamped }
        let ascending = table.sorted()
        return ascending.first { $0 >= clamped } ?? ascending.last!
    }

    /// schedutil's get_next_freq() with frequency invariance (the driver
    /// registers a scale source): headroom util * 1.25 capped at the CPU's
    /// capacity, then max_freq * util / capacity, then resolved.
    static func schedutilNextFrequency(_ policy: Policy, utilization: UInt64, capacity: UInt64) -> UInt32 {
        let withHeadroom = utilization + (utilization >> 2)
        let effective = min(withHeadroom, capacity)
        let raw = UInt64(policy.maxKHz) * effective / capacity
        return resolveFrequency(policy, targetKHz: raw)
    }

    /// virt_cpufreq_fast_switch(): writes set_perf of policy->cpu's window,
    /// from `executing`, which schedutil guarantees is in policy->cpus
    /// (dvfs_possible_from_any_cpu is false).
    @discardableResult
    mutating func fastSwitch(_ policy: Policy, frequencyKHz: UInt32, executing: Int) -> AccessResult {
        precondition(policy.cpus.contains(executing))
        return writel(frequencyKHz, window: policy.cpu, Self.regSetPerfStateOffset, executing: executing)
    }

    /// virt_scale_freq_tick(): the per-tick cur_perf read and the arch_freq_scale it yields.
    mutating func scaleFrequencyTick(cpu: Int, policy: Policy) -> UInt64 {
        let current = UInt64(readl(window: cpu, Self.regCurPerfStateOffset, executing: cpu))
        return min((current << Self.schedCapacityShift) / UInt64(policy.maxKHz), Self.schedCapacityScale)
    }
}
