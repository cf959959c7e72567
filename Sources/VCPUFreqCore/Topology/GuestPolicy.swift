/// A cpufreq policy as Linux's virtual-cpufreq driver builds it in the
/// guest, derived from the topology alone (the VM profile's clusters, domains
/// and table mode), never from the device: what a guest's
/// `/sys/devices/system/cpu/cpufreq/policyN` must show. The proofs that boot a
/// real guest compare its sysfs with these.
public struct GuestPolicy: Equatable, Sendable, Codable {
    /// `policy->cpu`: the lowest vCPU of the domain (CPUs come online in
    /// order, and `->init()` runs for each CPU no policy covers yet). Its
    /// window is the one `set_perf` is written to.
    public var cpu: Int
    /// `related_cpus`, ascending: every vCPU whose `perf_domain` equals the
    /// policy CPU's.
    public var cpus: [Int]
    /// The domain number (`perf_domain`).
    public var domain: Int
    /// `scaling_available_frequencies` in table mode: the table of the
    /// cluster the policy CPU models, ascending. nil in max-only mode (no
    /// frequency table, so no such file).
    public var frequenciesKHz: [Int]?
    /// `cpuinfo_min_freq`: the lowest entry, or 1 in max-only mode.
    public var minimumKHz: Int
    /// `cpuinfo_max_freq`: the cluster's highest entry.
    public var maximumKHz: Int

    /// JSON keys as `vcpufreq topology policies` prints them.
    enum CodingKeys: String, CodingKey {
        case cpu, cpus, domain
        case frequenciesKHz = "frequencies_khz"
        case minimumKHz = "min_khz"
        case maximumKHz = "max_khz"
    }

    public init(cpu: Int, cpus: [Int], domain: Int, frequenciesKHz: [Int]?, minimumKHz: Int, maximumKHz: Int) {
        self.cpu = cpu
        self.cpus = cpus
        self.domain = domain
        self.frequenciesKHz = frequenciesKHz
        self.minimumKHz = minimumKHz
        self.maximumKHz = maximumKHz
    }
}

extension Topology {
    /// The policies the upstream driver builds for the named VM profile (the
    /// first when nil), in the order the guest creates them (policy CPU
    /// ascending). Fails like `model(forVM:)` on a topology with errors.
    public func guestPolicies(forVM name: String? = nil) throws(TopologyError) -> [GuestPolicy] {
        let model = try model(forVM: name)
        var policies: [GuestPolicy] = []
        for vcpu in model.vcpus where !policies.contains(where: { $0.cpus.contains(vcpu.index) }) {
            let members = model.vcpus.filter { $0.performanceDomain == vcpu.performanceDomain }.map(\.index)
            let table = vcpu.frequenciesKHz.map(Int.init)
            let maximum = table.last ?? 1
            switch model.tableMode {
            case .table:
                policies.append(GuestPolicy(cpu: vcpu.index, cpus: members, domain: Int(vcpu.performanceDomain),
                                            frequenciesKHz: table, minimumKHz: table.first ?? 1, maximumKHz: maximum))
            case .maxOnly:
                policies.append(GuestPolicy(cpu: vcpu.index, cpus: members, domain: Int(vcpu.performanceDomain),
                                            frequenciesKHz: nil, minimumKHz: 1, maximumKHz: maximum))
            }
        }
        return policies
    }
}
