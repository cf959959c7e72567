import Testing
@testable import VCPUFreqCore

@Suite struct CurrentPerformanceTests {
    /// Hand-computed: a vCPU modeling the phone's little cluster (cap 160, max
    /// 1,803,000 kHz) pinned to the big cluster (cap 1024, max 2,802,000 kHz).
    /// Big at 500,000 kHz delivers 1024 × 500000/2802000 = 182.7 capacity;
    /// more than little's 160 → the vCPU is at (capped) max.
    /// Big at 250,000 kHz: 1024 × 250000 × 1803000 / (2802000 × 160) = 1,029,550.3 kHz.
    @Test(arguments: [
        (UInt32(500_000), UInt32(1_803_000)),
        (250_000, 1_029_550),
        (2_802_000, 1_803_000),
        (0, 1),
    ])
    func scalesAcrossClusters(hostKHz: UInt32, expected: UInt32) throws {
        var topology = SampleTopologies.phone()
        topology.vms[0].pinCPUs = [CPUList([6, 7])] + Array(repeating: nil, count: 7)
        let model = try topology.model()
        let vcpu = model.vcpus[0]
        #expect(CurrentPerformance.hostCluster(of: vcpu, in: topology.host) == 2)
        #expect(CurrentPerformance.kHz(vcpu: vcpu, hostCapacity: 1024, hostMaxKHz: 2_802_000, hostCurrentKHz: hostKHz) == expected)
    }

    @Test func sameClusterPassesTheFrequencyThrough() throws {
        let model = try SampleTopologies.phone().model()
        let little = model.vcpus[0]
        #expect(CurrentPerformance.kHz(vcpu: little, hostCapacity: 160, hostMaxKHz: 1_803_000, hostCurrentKHz: 930_000) == 930_000)
        #expect(CurrentPerformance.kHz(vcpu: little, hostCapacity: 160, hostMaxKHz: 1_803_000, hostCurrentKHz: 4_000_000) == 1_803_000)
    }

    @Test func extremeValuesDoNotTrap() throws {
        let model = try SampleTopologies.phone().model()
        let value = CurrentPerformance.kHz(vcpu: model.vcpus[0], hostCapacity: 1024, hostMaxKHz: 1, hostCurrentKHz: .max)
        #expect(value == model.vcpus[0].maxFrequencyKHz)
    }
}
