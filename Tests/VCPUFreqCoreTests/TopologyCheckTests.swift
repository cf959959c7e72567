import Testing
@testable import VCPUFreqCore

@Suite struct TopologyCheckTests {
    @Test(arguments: SampleTopologies.all(tableMode: .table) + SampleTopologies.all(tableMode: .maxOnly))
    func samplesAreClean(topology: Topology) throws {
        #expect(topology.check().filter { $0.severity == .error } == [])
        let model = try topology.model()
        #expect(model.vcpuCount == topology.vms[0].vcpuCount)
    }

    /// Each broken variant of the phone topology must produce an error at exactly this key path.
    @Test(arguments: [
        ("cluster CPU in two clusters", "host.cluster[1].cpus", { @Sendable (t: inout Topology) in t.host.clusters[1].cpus = CPUList([3, 4, 5]) }),
        ("missing CPU", "host.cluster", { @Sendable (t: inout Topology) in t.host.clusters[1].cpus = CPUList([4]) }),
        // Found by the topology fuzz target (Tests/Fuzz/regressions/topology/
        // negative-cpu-id): check() built 0...highest id and trapped on a
        // negative one; a huge one would have taken all memory.
        ("negative CPU id", "host.cluster[0].cpus", { @Sendable (t: inout Topology) in t.host.clusters[0].cpus = CPUList([-1, 0, 1, 2, 3]) }),
        ("CPU id past NR_CPUS", "host.cluster[2].cpus", { @Sendable (t: inout Topology) in t.host.clusters[2].cpus = CPUList([6, 7, Int.max]) }),
        ("capacity", "host.cluster[0].capacity", { @Sendable (t: inout Topology) in t.host.clusters[0].capacity = 1025 }),
        ("negative capacity", "host.cluster[2].capacity", { @Sendable (t: inout Topology) in t.host.clusters[2].capacity = -1 }),
        ("empty table", "host.cluster[0].frequencies_khz", { @Sendable (t: inout Topology) in t.host.clusters[0].frequenciesKHz = [] }),
        ("unsorted", "host.cluster[0].frequencies_khz[2]", { @Sendable (t: inout Topology) in t.host.clusters[0].frequenciesKHz = [1, 3, 2] }),
        ("duplicate", "host.cluster[0].frequencies_khz[1]", { @Sendable (t: inout Topology) in t.host.clusters[0].frequenciesKHz = [5, 5] }),
        ("over 64", "host.cluster[0].frequencies_khz", { @Sendable (t: inout Topology) in t.host.clusters[0].frequenciesKHz = Array(1...65) }),
        ("zero kHz", "host.cluster[0].frequencies_khz[0]", { @Sendable (t: inout Topology) in t.host.clusters[0].frequenciesKHz = [0, 1] }),
        ("unknown cluster", "vm[0].clusters[6]", { @Sendable (t: inout Topology) in t.vms[0].clusters[6] = "huge" }),
        ("cross-table domain", "vm[0].domains[4]", { @Sendable (t: inout Topology) in t.vms[0].domains = [0, 0, 0, 0, 0, 1, 2, 2] }),
        ("cap", "vm[0].util_cap", { @Sendable (t: inout Topology) in t.vms[0].utilCap = 2048 }),
        ("vcpu count", "vm[0].clusters", { @Sendable (t: inout Topology) in t.vms[0].vcpuCount = 9 }),
        ("too many vcpus", "vm[0].vcpus", { @Sendable (t: inout Topology) in t.vms[0].vcpuCount = 1025 }),
        ("unaligned base", "vm[0].base_address", { @Sendable (t: inout Topology) in t.vms[0].baseAddress = 0x1040001 }),
        ("pin to unknown CPU", "vm[0].pin_cpus[0]", { @Sendable (t: inout Topology) in t.vms[0].pinCPUs = [CPUList([42])] + Array(repeating: nil, count: 7) }),
        ("slice bound", "vm[0].policy.latency_slice_us", { @Sendable (t: inout Topology) in t.vms[0].policy.latencySliceMicroseconds = 50 }),
        ("duplicate cluster name", "host.cluster[1].name", { @Sendable (t: inout Topology) in t.host.clusters[1].name = "little" }),
        // Found by the topology fuzz target (Tests/Fuzz/regressions/topology/
        // nul-in-a-name): a NUL passed the check, and the file written for
        // the topology read back without it (TOMLKit ends strings at a NUL).
        ("NUL in the host's name", "host.name", { @Sendable (t: inout Topology) in t.host.name = "\u{0}" }),
        ("NUL in a cluster's name", "host.cluster[2].name", { @Sendable (t: inout Topology) in t.host.clusters[2].name = "big\u{0}" }),
        ("NUL in a VM's name", "vm[0].name", { @Sendable (t: inout Topology) in t.vms[0].name = "a\u{0}b" }),
    ] as [(String, String, @Sendable (inout Topology) -> Void)])
    func reportsAtKeyPath(label: String, keyPath: String, breakIt: @Sendable (inout Topology) -> Void) {
        var topology = SampleTopologies.phone()
        breakIt(&topology)
        let errors = topology.check().filter { $0.severity == .error }
        #expect(errors.contains { $0.keyPath == keyPath }, "\(label): got \(errors)")
        #expect(throws: TopologyError.self) { try topology.model() }
    }

    @Test func defaultDomainsFollowClusters() throws {
        let model = try SampleTopologies.phone().model()
        #expect(model.vcpus.map(\.performanceDomain) == [0, 0, 0, 0, 1, 1, 2, 2])
        #expect(model.domains == [[0, 1, 2, 3], [4, 5], [6, 7]])
        #expect(model.vcpus[6].maxFrequencyKHz == 2_802_000)
        #expect(model.vcpus[0].isSlowerThanHost == false)
    }

    @Test func pinningOntoFasterClusterMakesVCPUSlowerThanHost() throws {
        var topology = SampleTopologies.phone()
        topology.vms[0].pinCPUs = [CPUList([6, 7])] + Array(repeating: nil, count: 7)
        let model = try topology.model()
        #expect(model.vcpus[0].isSlowerThanHost)
        #expect(model.vcpus[0].hostMaxFrequencyKHz == 2_802_000)
        #expect(!model.vcpus[1].isSlowerThanHost)
    }

    @Test func headroomAutoFollowsGovernor() throws {
        var topology = SampleTopologies.phone(headroom: .auto)
        #expect(try topology.model().compensateHeadroom)
        topology.host.governor = .performance
        #expect(try !topology.model().compensateHeadroom)
    }

    @Test func unknownProfileIsReported() {
        #expect(throws: TopologyError.self) { try SampleTopologies.phone().model(forVM: "nope") }
    }
}
