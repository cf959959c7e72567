/// What `cur_perf` reports: the performance the host is really giving a
/// vCPU, in the vCPU's own kHz scale (the scale of its table), so the guest's
/// frequency invariance (`scale = cur_perf * 1024 / max_perf`) sees the host.
public enum CurrentPerformance {
    /// The host cluster a vCPU's thread runs on, for reading its frequency:
    /// the highest-capacity cluster of its pin set (where the scheduler puts a
    /// busy thread), which is the modeled cluster when the vCPU is pinned to it.
    public static func hostCluster(of vcpu: VCPUModel, in host: HostTopology) -> Int {
        var best = vcpu.cluster
        var bestCapacity = -1
        for cpu in vcpu.hostCPUs.ids {
            guard let index = host.clusterIndex(ofCPU: cpu) else { continue }
            if host.clusters[index].capacity > bestCapacity {
                best = index
                bestCapacity = host.clusters[index].capacity
            }
        }
        return best
    }

    /// Converts the host cluster's current frequency into the vCPU's scale:
    /// host capacity now = hostCapacity × hostKHz / hostMaxKHz; the vCPU
    /// delivers that capacity at vcpuMax × capacityNow / vcpuCapacity. Never
    /// above the vCPU's max (the guest clamps at 1024 anyway) and never 0
    /// while the host runs (a 0 would stall the guest's invariance).
    public static func kHz(
        vcpu: VCPUModel, hostCapacity: Int, hostMaxKHz: UInt32, hostCurrentKHz: UInt32
    ) -> UInt32 {
        guard vcpu.capacity > 0, hostMaxKHz > 0, vcpu.maxFrequencyKHz > 0 else { return vcpu.maxFrequencyKHz }
        if hostCapacity == vcpu.capacity && hostMaxKHz == vcpu.maxFrequencyKHz {
            return min(hostCurrentKHz, vcpu.maxFrequencyKHz)
        }
        // 128-bit intermediate: a topology may hold any 32-bit kHz value.
        let capacityNow = UInt64(max(0, min(hostCapacity, 1024))) * UInt64(hostCurrentKHz)
        let denominator = UInt64(hostMaxKHz) * UInt64(vcpu.capacity)
        let product = capacityNow.multipliedFullWidth(by: UInt64(vcpu.maxFrequencyKHz))
        guard product.high < denominator else { return vcpu.maxFrequencyKHz }
        let (quotient, remainder) = denominator.dividingFullWidth(product)
        let rounded = quotient + (remainder >= denominator - remainder ? 1 : 0)
        return UInt32(max(1, min(rounded, UInt64(vcpu.maxFrequencyKHz))))
    }
}
