import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

@Suite struct SysfsTextTests {
    @Test(arguments: [("1024\n", 1024), (" 65535 ", 65535), ("-1\n", -1), ("", nil), ("12a", nil)] as [(String, Int?)])
    func integers(text: String, value: Int?) {
        #expect(SysfsText.integer(text) == value)
    }

    @Test(arguments: [
        ("0-3\n", [0, 1, 2, 3]),
        ("0 1 2 3\n", [0, 1, 2, 3]),  // related_cpus spelling
        ("4\n", [4]),
        ("0-1,6\n", [0, 1, 6]),
        ("\n", nil),
        ("0-x\n", nil),
    ] as [(String, [Int]?)])
    func cpuLists(text: String, ids: [Int]?) {
        #expect(SysfsText.cpuList(text)?.ids == ids)
    }

    @Test(arguments: [
        ("300000 574000 738000 \n", [300_000, 574_000, 738_000]),
        ("2400000 2200000 500000\n", [500_000, 2_200_000, 2_400_000]),  // acpi-cpufreq order
        ("500 500 100", [100, 500]),
        ("", nil),
        ("100 abc", nil),
        ("0 100", nil),
    ] as [(String, [Int]?)])
    func frequencyLists(text: String, table: [Int]?) {
        #expect(SysfsText.frequencies(text) == table)
    }

    @Test func governorWord() {
        #expect(SysfsText.word("schedutil\n") == "schedutil")
        #expect(SysfsText.word("\n") == nil)
        #expect(SysfsText.word("two words") == nil)
    }

    @Test(arguments: [
        ("processor\t: 0\ncpu MHz\t\t: 2700.000\nprocessor\t: 1\ncpu MHz\t\t: 3100.5\n", 3100.5),
        ("processor\t: 0\nBogoMIPS\t: 50.00\n", nil),  // arm64 has no cpu MHz
        ("cpu MHz : nan\n", nil),
    ] as [(String, Double?)])
    func cpuinfo(text: String, mhz: Double?) {
        #expect(SysfsText.cpuinfoMaximumMHz(text) == mhz)
    }
}

@Suite struct SysfsProbeTests {
    static let phoneLittle = [300_000, 574_000, 738_000, 930_000, 1_098_000, 1_197_000, 1_328_000, 1_401_000, 1_598_000, 1_704_000, 1_803_000]
    static let phoneMid = [400_000, 553_000, 696_000, 799_000, 910_000, 1_024_000, 1_197_000, 1_328_000, 1_491_000, 1_663_000, 1_836_000, 1_999_000, 2_130_000, 2_253_000]
    static let phoneBig = [500_000, 851_000, 984_000, 1_106_000, 1_277_000, 1_426_000, 1_582_000, 1_745_000, 1_826_000, 2_048_000, 2_188_000, 2_252_000, 2_401_000, 2_507_000, 2_630_000, 2_704_000, 2_802_000]

    static func probe(_ fixture: String, cpuinfo: String? = nil) throws -> SysfsProbe.Result {
        let reader = SysfsReader(root: Fixtures.sysfs(fixture), cpuinfoPath: cpuinfo)
        return SysfsProbe.topology(from: try reader.snapshot(), hostName: fixture)
    }

    static func mirrorVM(_ clusters: [String]) -> VMProfile {
        VMProfile(name: "vm", vcpuCount: clusters.count, clusters: clusters)
    }

    @Test func phoneHasThreeClustersWithTheirTables() throws {
        let result = try Self.probe("phone-4-2-2")
        let expected = Topology(
            host: HostTopology(
                name: "phone-4-2-2", governor: .schedutil, possibleCPUs: CPUList(0...7),
                clusters: [
                    HostCluster(name: "little", cpus: CPUList(0...3), capacity: 160, frequenciesKHz: Self.phoneLittle),
                    HostCluster(name: "mid", cpus: CPUList(4...5), capacity: 498, frequenciesKHz: Self.phoneMid),
                    HostCluster(name: "big", cpus: CPUList(6...7), capacity: 1024, frequenciesKHz: Self.phoneBig),
                ]),
            vms: [Self.mirrorVM(["little", "little", "little", "little", "mid", "mid", "big", "big"])])
        #expect(result.topology == expected)
        #expect(result.notes == [])
        #expect(!result.isNominal)
    }

    @Test func laptopPerCPUDirectoriesAndDescendingTables() throws {
        let result = try Self.probe("laptop-4-4")
        let expected = Topology(
            host: HostTopology(
                name: "laptop-4-4", governor: .schedutil, possibleCPUs: CPUList(0...7),
                clusters: [
                    HostCluster(name: "little", cpus: CPUList(0...3), capacity: 382, frequenciesKHz: [500_000, 774_000, 1_000_000, 1_200_000, 1_500_000, 1_800_000, 2_000_000]),
                    HostCluster(name: "big", cpus: CPUList(4...7), capacity: 1024, frequenciesKHz: [500_000, 800_000, 1_100_000, 1_400_000, 1_700_000, 2_000_000, 2_200_000, 2_400_000]),
                ]),
            vms: [Self.mirrorVM(["little", "little", "little", "little", "big", "big", "big", "big"])])
        #expect(result.topology == expected)
        #expect(result.notes == [])
    }

    /// Sixteen per-CPU policies with equal tables become one cluster; the
    /// table is a 100 MHz ladder between the cpuinfo bounds; capacity 1024.
    @Test func serverPerCorePoliciesMergeIntoOneCluster() throws {
        let result = try Self.probe("server-16")
        let expected = Topology(
            host: HostTopology(
                name: "server-16", governor: .performance, possibleCPUs: CPUList(0...15),
                clusters: [HostCluster(name: "cpu", cpus: CPUList(0...15), capacity: 1024, frequenciesKHz: Array(stride(from: 1_200_000, through: 3_000_000, by: 100_000)))]),
            vms: [Self.mirrorVM(Array(repeating: "cpu", count: 16))])
        #expect(result.topology == expected)
        #expect(result.notes == [
            "no cpu_capacity for CPU 0-15: assumed 1024 (every CPU reaches the same maximum)",
            "the cpufreq driver lists no frequencies (it scales continuously): each table is a ladder from cpuinfo_min_freq to cpuinfo_max_freq in 100 MHz steps",
        ])
    }

    @Test func thisMachineShapeGetsANominalTableFromCpuinfo() throws {
        let result = try Self.probe("this-machine", cpuinfo: Fixtures.sysfs("this-machine") + "/cpuinfo")
        let expected = Topology(
            host: HostTopology(
                name: "this-machine", governor: HostGovernor.none, possibleCPUs: CPUList(0...1),
                clusters: [HostCluster(name: "cpu", cpus: CPUList(0...1), capacity: 1024, frequenciesKHz: [1_350_000, 2_700_000], isNominal: true)]),
            vms: [Self.mirrorVM(["cpu", "cpu"])])
        #expect(result.topology == expected)
        #expect(result.isNominal)
        #expect(result.notes.contains { $0.contains("no cpufreq driver") && $0.contains("nominal = true") })
    }

    @Test func withoutCpuinfoTheNominalTableIsTheFixedPair() throws {
        let result = try Self.probe("this-machine")
        #expect(result.topology.host.clusters.map(\.frequenciesKHz) == [[1_000_000, 2_000_000]])
    }

    @Test(arguments: ["phone-4-2-2", "laptop-4-4", "server-16", "this-machine"])
    func probedTopologiesPassCheck(fixture: String) throws {
        let topology = try Self.probe(fixture).topology
        #expect(topology.check() == [])
        let model = try topology.model()
        #expect(model.vcpuCount == topology.host.allCPUs.count)
    }

    /// The live host: must work, and must say nominal exactly when the host has no cpufreq policy.
    @Test func probesThisHost() throws {
        let reader = SysfsReader()
        let result = SysfsProbe.topology(from: try reader.snapshot(), hostName: "live")
        #expect(result.topology.check().filter { $0.severity == .error } == [])
        let hasPolicies = (SysfsReader.list("/sys/devices/system/cpu/cpufreq") ?? []).contains { $0.hasPrefix("policy") }
        #expect(result.isNominal == !hasPolicies)
        if !hasPolicies {
            #expect(result.topology.host.governor == HostGovernor.none)
            #expect(result.notes.contains { $0.contains("no cpufreq driver") })
        }
    }

    @Test func missingRootIsAClearError() {
        do {
            _ = try SysfsReader(root: "/nonexistent").snapshot()
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "cannot read /nonexistent/devices/system/cpu: No such file or directory")
        }
    }

    // Pure cases from hand-built snapshots.

    @Test func clusterIDsWithoutCpufreqGroupByClusterAndGetNominalTables() {
        let cpus = [
            SysfsCPU(id: 0, capacity: 512, clusterID: 0, packageID: 0),
            SysfsCPU(id: 1, capacity: 512, clusterID: 0, packageID: 0),
            SysfsCPU(id: 2, capacity: 1024, clusterID: 1, packageID: 0),
        ]
        let result = SysfsProbe.topology(from: SysfsSnapshot(possibleCPUs: CPUList(0...2), cpus: cpus), hostName: "h")
        #expect(result.topology.host.clusters.map(\.name) == ["little", "big"])
        #expect(result.topology.host.clusters.map(\.cpus) == [CPUList([0, 1]), CPUList([2])])
        #expect(result.topology.host.clusters.allSatisfy { $0.isNominal && $0.frequenciesKHz == SysfsProbe.fallbackNominalTableKHz })
    }

    @Test func fourClustersAreNumberedByCapacity() {
        let capacities = [1024, 300, 700, 100]
        let cpus = capacities.enumerated().map { index, capacity in
            SysfsCPU(id: index, capacity: capacity, policy: SysfsPolicy(relatedCPUs: CPUList([index]), maximumFrequencyKHz: 1_000_000 + index, governor: "schedutil"))
        }
        let result = SysfsProbe.topology(from: SysfsSnapshot(possibleCPUs: CPUList(0...3), cpus: cpus), hostName: "h")
        #expect(result.topology.host.clusters.map(\.name) == ["cluster0", "cluster1", "cluster2", "cluster3"])
        #expect(result.topology.host.clusters.map(\.capacity) == [100, 300, 700, 1024])
        #expect(result.topology.vms[0].clusters == ["cluster3", "cluster1", "cluster2", "cluster0"])
    }

    @Test(arguments: [
        (["schedutil", "performance"], nil as HostGovernor?),
        (["sched_pixel", "sched_pixel"], nil),
        (["ondemand", "ondemand"], .ondemand),
    ] as [([String], HostGovernor?)])
    func governorMustBeUniformAndKnown(governors: [String], expected: HostGovernor?) {
        let cpus = governors.enumerated().map { index, governor in
            SysfsCPU(id: index, capacity: 1024, policy: SysfsPolicy(relatedCPUs: CPUList([index]), availableFrequenciesKHz: [1000, 2000], governor: governor))
        }
        let result = SysfsProbe.topology(from: SysfsSnapshot(possibleCPUs: CPUList(0...1), cpus: cpus), hostName: "h")
        #expect(result.topology.host.governor == expected)
        #expect(result.notes.contains { $0.hasPrefix("governor ") } == (expected == nil))
    }

    @Test func disagreeingCapacitiesInOnePolicyUseTheHighest() {
        let policy = SysfsPolicy(relatedCPUs: CPUList([0, 1]), availableFrequenciesKHz: [1000], governor: "schedutil")
        let cpus = [SysfsCPU(id: 0, capacity: 900, policy: policy), SysfsCPU(id: 1, capacity: 1000, policy: policy)]
        let result = SysfsProbe.topology(from: SysfsSnapshot(possibleCPUs: CPUList(0...1), cpus: cpus), hostName: "h")
        #expect(result.topology.host.clusters.map(\.capacity) == [1000])
        #expect(result.notes.contains { $0.contains("report capacities 900, 1000: used 1000") })
    }

    @Test(arguments: [(2700.0, [1_350_000, 2_700_000]), (2699.998, [1_350_000, 2_700_000]), (1.0, [1_000_000, 2_000_000]), (nil, [1_000_000, 2_000_000])] as [(Double?, [Int])])
    func nominalTables(mhz: Double?, table: [Int]) {
        #expect(SysfsProbe.nominalTableKHz(cpuinfoMaximumMHz: mhz) == table)
    }
}
