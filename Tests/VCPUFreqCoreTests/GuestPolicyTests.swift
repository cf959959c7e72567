import Testing
@testable import VCPUFreqCore

/// `Topology.guestPolicies`: what a guest's virtual-cpufreq driver must show,
/// written out by hand per case (not recomputed from the topology).
@Suite struct GuestPolicyTests {
    typealias T = SampleTopologies

    @Test func phoneHasOnePolicyPerClusterWithItsTable() throws {
        #expect(try T.phone().guestPolicies() == [
            GuestPolicy(cpu: 0, cpus: [0, 1, 2, 3], domain: 0, frequenciesKHz: T.phoneLittle, minimumKHz: 300_000, maximumKHz: 1_803_000),
            GuestPolicy(cpu: 4, cpus: [4, 5], domain: 1, frequenciesKHz: T.phoneMid, minimumKHz: 400_000, maximumKHz: 2_253_000),
            GuestPolicy(cpu: 6, cpus: [6, 7], domain: 2, frequenciesKHz: T.phoneBig, minimumKHz: 500_000, maximumKHz: 2_802_000),
        ])
    }

    @Test func maxOnlyModeHasNoTableAndAMinimumOfOne() throws {
        #expect(try T.phone(tableMode: .maxOnly).guestPolicies() == [
            GuestPolicy(cpu: 0, cpus: [0, 1, 2, 3], domain: 0, frequenciesKHz: nil, minimumKHz: 1, maximumKHz: 1_803_000),
            GuestPolicy(cpu: 4, cpus: [4, 5], domain: 1, frequenciesKHz: nil, minimumKHz: 1, maximumKHz: 2_253_000),
            GuestPolicy(cpu: 6, cpus: [6, 7], domain: 2, frequenciesKHz: nil, minimumKHz: 1, maximumKHz: 2_802_000),
        ])
    }

    /// Domains are numbers, not indices, and need not be contiguous: the
    /// policy CPU is the lowest member, the table that CPU's cluster's.
    @Test func interleavedDomainsGroupByNumber() throws {
        var topology = T.phone()
        topology.vms[0] = VMProfile(
            name: "mixed", vcpuCount: 4, clusters: ["big", "little", "big", "little"], domains: [9, 2, 9, 2])
        #expect(try topology.guestPolicies(forVM: "mixed") == [
            GuestPolicy(cpu: 0, cpus: [0, 2], domain: 9, frequenciesKHz: T.phoneBig, minimumKHz: 500_000, maximumKHz: 2_802_000),
            GuestPolicy(cpu: 1, cpus: [1, 3], domain: 2, frequenciesKHz: T.phoneLittle, minimumKHz: 300_000, maximumKHz: 1_803_000),
        ])
    }

    @Test func anUnknownProfileFails() {
        #expect(throws: TopologyError.self) { try T.phone().guestPolicies(forVM: "nope") }
    }
}
