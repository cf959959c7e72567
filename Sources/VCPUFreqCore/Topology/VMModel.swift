/// One vCPU as the device model and the policy see it, resolved from a
/// checked topology: every value is in range and every name is resolved.
public struct VCPUModel: Equatable, Sendable {
    public var index: Int
    /// Index of the host cluster this vCPU models.
    public var cluster: Int
    /// Capacity (0...1024) of the modeled cluster.
    public var capacity: Int
    /// Performance table presented to the guest, ascending, kHz.
    public var frequenciesKHz: [UInt32]
    /// Highest entry of `frequenciesKHz`.
    public var maxFrequencyKHz: UInt32
    /// Guest performance domain (`perf_domain`).
    public var performanceDomain: UInt32
    /// Host CPUs the vCPU thread may run on (its pin set).
    public var hostCPUs: CPUList
    /// Fastest frequency among the host CPUs of the pin set, kHz.
    public var hostMaxFrequencyKHz: UInt32
    /// Highest capacity among the host CPUs of the pin set.
    public var hostCapacity: Int

    public init(
        index: Int, cluster: Int, capacity: Int, frequenciesKHz: [UInt32], performanceDomain: UInt32,
        hostCPUs: CPUList, hostMaxFrequencyKHz: UInt32, hostCapacity: Int
    ) {
        self.index = index
        self.cluster = cluster
        self.capacity = capacity
        self.frequenciesKHz = frequenciesKHz
        self.maxFrequencyKHz = frequenciesKHz.last ?? 0
        self.performanceDomain = performanceDomain
        self.hostCPUs = hostCPUs
        self.hostMaxFrequencyKHz = hostMaxFrequencyKHz
        self.hostCapacity = hostCapacity
    }

    /// True when the vCPU models a CPU slower than the host CPUs it runs on:
    /// then util_max must hold it down to the modeled speed.
    public var isSlowerThanHost: Bool {
        maxFrequencyKHz < hostMaxFrequencyKHz || capacity < hostCapacity
    }
}

/// A VM profile resolved against its host: what the device model serves and
/// what the policy turns requests into.
public struct VMModel: Equatable, Sendable {
    public var name: String
    public var vcpus: [VCPUModel]
    /// Highest utilization any vCPU may obtain.
    public var utilCap: Int
    /// Multiply computed utilization by 0.8 (host runs schedutil).
    public var compensateHeadroom: Bool
    public var tableMode: TableMode
    public var addressMap: DeviceAddressMap
    /// Pin vCPU threads to `VCPUModel.hostCPUs`.
    public var pin: Bool
    public var policy: PolicySettings
    /// vCPU indices of each performance domain, in order of the domains'
    /// first appearance.
    public var domains: [[Int]]

    public init(
        name: String, vcpus: [VCPUModel], utilCap: Int, compensateHeadroom: Bool, tableMode: TableMode,
        baseAddress: UInt64, pin: Bool, policy: PolicySettings
    ) {
        self.name = name
        self.vcpus = vcpus
        self.utilCap = utilCap
        self.compensateHeadroom = compensateHeadroom
        self.tableMode = tableMode
        self.addressMap = DeviceAddressMap(base: baseAddress, vcpuCount: vcpus.count)
        self.pin = pin
        self.policy = policy
        var order: [UInt32] = []
        var members: [UInt32: [Int]] = [:]
        for vcpu in vcpus {
            if members[vcpu.performanceDomain] == nil { order.append(vcpu.performanceDomain) }
            members[vcpu.performanceDomain, default: []].append(vcpu.index)
        }
        self.domains = order.map { members[$0]! }
    }

    public var vcpuCount: Int { vcpus.count }
}

extension Topology {
    /// Resolves the named VM profile (the first when nil) into the model the
    /// device and the policy use. Fails with every problem `check()` finds.
    public func model(forVM name: String? = nil) throws(TopologyError) -> VMModel {
        let diagnostics = check()
        if diagnostics.hasErrors { throw TopologyError(diagnostics.filter { $0.severity == .error }) }
        guard let vmIndex = name.map({ wanted in vms.firstIndex { $0.name == wanted } }) ?? vms.indices.first else {
            let known = vms.map(\.name).joined(separator: ", ")
            throw TopologyError([.error("vm", "no VM profile named \"\(name ?? "")\" (profiles: \(known))")])
        }
        let profile = vms[vmIndex]
        let domainIDs = profile.domains ?? Self.defaultDomains(clusters: profile.clusters)
        var vcpus: [VCPUModel] = []
        vcpus.reserveCapacity(profile.vcpuCount)
        for index in 0..<profile.vcpuCount {
            let clusterIndex = host.clusterIndex(named: profile.clusters[index])!
            let cluster = host.clusters[clusterIndex]
            let pinned = profile.pinCPUs?[index] ?? cluster.cpus
            let hostClusters = pinned.ids.compactMap { host.clusterIndex(ofCPU: $0) }.map { host.clusters[$0] }
            vcpus.append(
                VCPUModel(
                    index: index,
                    cluster: clusterIndex,
                    capacity: cluster.capacity,
                    frequenciesKHz: cluster.frequenciesKHz.map { UInt32($0) },
                    performanceDomain: UInt32(domainIDs[index]),
                    hostCPUs: pinned,
                    hostMaxFrequencyKHz: UInt32(hostClusters.map(\.maxFrequencyKHz).max() ?? cluster.maxFrequencyKHz),
                    hostCapacity: hostClusters.map(\.capacity).max() ?? cluster.capacity
                ))
        }
        let compensate: Bool
        switch profile.headroom {
        case .schedutil: compensate = true
        case .none: compensate = false
        case .auto: compensate = host.governor == .schedutil
        }
        return VMModel(
            name: profile.name, vcpus: vcpus, utilCap: profile.utilCap, compensateHeadroom: compensate,
            tableMode: profile.tableMode, baseAddress: profile.baseAddress, pin: profile.pin, policy: profile.policy)
    }

    /// One domain per modeled cluster, numbered 0, 1, ... in order of first appearance.
    public static func defaultDomains(clusters: [String]) -> [Int] {
        var numbers: [String: Int] = [:]
        return clusters.map { name in
            if let number = numbers[name] { return number }
            let number = numbers.count
            numbers[name] = number
            return number
        }
    }
}
