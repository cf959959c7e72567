import VCPUFreqCore

/// One SCMI performance domain: a performance domain of the VM profile, its
/// levels (the domain's frequency table; a level's value is its frequency in
/// kHz, so the guest's multiplier is 1000) and what the operator allows.
public struct SCMIPerformanceDomain: Equatable, Sendable {
    /// vCPUs of the domain, ascending; `vcpus[0]` stands for the domain in
    /// requests (the upstream driver's `policy->cpu`).
    public var vcpus: [Int]
    /// Levels in kHz, strictly ascending (a checked topology guarantees it), 1...64 of them.
    public var levelsKHz: [UInt32]
    /// Index of the highest level the operator's `util_cap` allows.
    public var capIndex: Int
    /// NUL-free UTF-8, at most 63 bytes (DOMAIN_NAME_GET); the first 15 are the short name.
    public var name: [UInt8]
    /// `rate_limit_us` of DOMAIN_ATTRIBUTES: the profile's minimum interval between applied changes.
    public var rateLimitMicroseconds: UInt32
    /// Abstract power per level (DESCRIBE_LEVELS), increasing with the level.
    public var power: [UInt32]

    /// Transition latency reported for every level: the order of the daemon's
    /// request → hint path (tens of µs), not a property of any hardware.
    public static let transitionLatencyMicroseconds: UInt16 = 50
    /// Bits 19:0 of DOMAIN_ATTRIBUTES `rate_limit_us` (Linux masks with GENMASK(19, 0)).
    public static let maximumRateLimitMicroseconds: UInt32 = (1 << 20) - 1

    public var maximumKHz: UInt32 { levelsKHz[levelsKHz.count - 1] }
    public var capKHz: UInt32 { levelsKHz[capIndex] }

    /// The index of `kHz` among the levels, nil when it is not one.
    public func index(ofLevel kHz: UInt32) -> Int? {
        var low = 0, high = levelsKHz.count
        while low < high {
            let middle = (low + high) / 2
            if levelsKHz[middle] < kHz { low = middle + 1 } else { high = middle }
        }
        return low < levelsKHz.count && levelsKHz[low] == kHz ? low : nil
    }
}

extension SCMIPerformanceDomain {
    /// The SCMI domains of a VM: domain i is `model.domains[i]` (the
    /// profile's performance domains in order of first appearance), named
    /// after the host cluster its vCPUs model (with the domain number when
    /// two domains model one cluster).
    public static func domains(of model: VMModel, host: HostTopology) -> [SCMIPerformanceDomain] {
        let clusterOf = model.domains.map { model.vcpus[$0[0]].cluster }
        return model.domains.enumerated().map { index, members in
            let vcpu = model.vcpus[members[0]]
            let levels = vcpu.frequenciesKHz.isEmpty ? [1] : Array(vcpu.frequenciesKHz.prefix(UpstreamABI.maximumTableEntries))
            var capIndex = 0
            for (level, kHz) in levels.enumerated()
            where PolicyEngine.utilization(forPerformanceKHz: kHz, of: vcpu, compensateHeadroom: model.compensateHeadroom) <= model.utilCap {
                capIndex = level
            }
            let clusterName = host.clusters.indices.contains(vcpu.cluster) ? host.clusters[vcpu.cluster].name : "cluster\(vcpu.cluster)"
            let shared = clusterOf.filter { $0 == vcpu.cluster }.count > 1
            let name = shared ? "\(clusterName)-\(index)" : clusterName
            return SCMIPerformanceDomain(
                vcpus: members.sorted(), levelsKHz: levels, capIndex: capIndex, name: Self.nameBytes(name),
                rateLimitMicroseconds: UInt32(clamping: min(max(model.policy.minimumIntervalMicroseconds, 0), Int(maximumRateLimitMicroseconds))),
                power: Self.power(levels: levels, capacity: vcpu.capacity))
        }
    }

    /// UTF-8 without NULs, cut to 63 bytes on a character boundary (SCMI_MAX_STR_SIZE 64 with its NUL).
    static func nameBytes(_ text: String) -> [UInt8] {
        var prefix = Substring(text.filter { $0 != "\0" })
        while prefix.utf8.count > 63 { prefix = prefix.dropLast() }
        return Array(prefix.utf8)
    }

    /// A power model for the guest's Energy Model (abstract scale, flags 0
    /// of PERFORMANCE PROTOCOL_ATTRIBUTES): capacity × (f / fmax)² ×
    /// 1000 / 1024, at least 1 and strictly increasing. A model, not a
    /// measurement: it only orders the levels and the domains sensibly.
    static func power(levels: [UInt32], capacity: Int) -> [UInt32] {
        let top = UInt64(max(levels.last ?? 1, 1))
        let scale = UInt64(max(0, min(capacity, 1024))) * 1000 / 1024
        var previous: UInt32 = 0
        return levels.map { kHz in
            // f ≤ top, so each step stays below scale × 2^32.
            let value = scale * UInt64(kHz) / top * UInt64(kHz) / top
            let power = max(UInt32(clamping: value), previous + 1)
            previous = power
            return power
        }
    }
}
