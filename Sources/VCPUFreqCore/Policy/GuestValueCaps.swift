/// The operator's bounds on what a host BPF program may act on for one VM
/// (`struct vcpufreq_vm_caps` of bpf/vcpufreq_bpf.h, written by the daemon
/// into map `vm_caps`). A guest value is untrusted input to BPF too: the
/// programs cut every value to these, the same bounds the daemon's own policy
/// applies (`PolicyLimits`), so a guest gains nothing by bypassing the daemon.
public struct GuestValueCaps: Equatable, Sendable {
    /// Features whose guest fields the programs may act on (`SharedPageABI.Feature`):
    /// utilization and performance always; the latency hint only when the VM
    /// gets one; boost only when boosting is enabled.
    public var features: SharedPageABI.Feature
    /// Highest utilization acted on, 0...1024 (`util_cap`).
    public var utilizationCap: UInt16
    /// What a granted boost lifts the utilization to, ≤ the cap; 0 = no boost.
    public var boostUtilization: UInt16
    /// Highest performance request acted on, kHz: the VM's fastest vCPU.
    public var maximumPerformanceKHz: UInt32

    public init(features: SharedPageABI.Feature, utilizationCap: UInt16, boostUtilization: UInt16, maximumPerformanceKHz: UInt32) {
        self.features = features
        self.utilizationCap = utilizationCap
        self.boostUtilization = boostUtilization
        self.maximumPerformanceKHz = maximumPerformanceKHz
    }

    public init(vm: VMModel) {
        let limits = PolicyLimits(vm: vm)
        var features: SharedPageABI.Feature = [.utilization, .performance]
        if limits.latencyHint != .none { features.insert(.latencyHint) }
        if limits.boostEnabled { features.insert(.boost) }
        self.features = features
        utilizationCap = limits.utilCap
        boostUtilization = limits.boostEnabled ? min(limits.boostUtilization, limits.utilCap) : 0
        maximumPerformanceKHz = vm.vcpus.map(\.maxFrequencyKHz).max() ?? 0
    }
}

/// Per host CPU, its cluster index and capacity in the host topology
/// (`struct vcpufreq_cpu_info`, map `cpu_info`): what the BPF programs write
/// into a vCPU's `SchedulerPlacement` for the CPU it runs on.
public struct HostCPUTable: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var cpu: Int
        public var cluster: Int
        public var capacity: Int
    }

    /// Every CPU the topology lists (each in one cluster; a CPU listed twice
    /// keeps its first cluster), ascending, capacities cut to 0...1024.
    public let entries: [Entry]

    /// CPUs of at most `maximumCPUs` (the map's size) are listed.
    public init(host: HostTopology, maximumCPUs: Int = 4096) {
        var byCPU: [Int: Entry] = [:]
        for (index, cluster) in host.clusters.enumerated() {
            for cpu in cluster.cpus.ids where cpu >= 0 && cpu < maximumCPUs && byCPU[cpu] == nil {
                byCPU[cpu] = Entry(cpu: cpu, cluster: index, capacity: min(max(cluster.capacity, 0), 1024))
            }
        }
        entries = byCPU.values.sorted { $0.cpu < $1.cpu }
    }
}
