import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqConfig
import VCPUFreqCore
@testable import VCPUFreqLinux

/// The host shapes people run on, one fixture tree each (Tests/Fixtures/sysfs,
/// made by make-fixtures.sh from the real drivers' layouts): the clusters,
/// capacities and tables the probe must infer, written out by hand.
@Suite struct SysfsHostShapeTests {
    static func probe(_ fixture: String) throws -> SysfsProbe.Result {
        SysfsProbe.topology(from: try SysfsReader(root: Fixtures.sysfs(fixture), cpuinfoPath: nil).snapshot(), hostName: fixture)
    }

    /// `from`, every multiple of 100 MHz strictly between, `to`, and the named points: the ladder, by hand.
    static func ladder(_ from: Int, _ to: Int, plus named: [Int] = []) -> [Int] {
        let steps = Array(stride(from: (from / 100_000 + 1) * 100_000, to: to, by: 100_000))
        return Array(Set([from] + steps + named + [to])).sorted()
    }

    static func mirrorVM(_ clusters: [String]) -> VMProfile {
        VMProfile(name: "vm", vcpuCount: clusters.count, clusters: clusters)
    }

    static func expectLadderShape(_ cluster: HostCluster, minimum: Int, maximum: Int) {
        #expect(cluster.frequenciesKHz.first == minimum, "\(cluster.name)")
        #expect(cluster.frequenciesKHz.last == maximum, "\(cluster.name)")
        #expect(zip(cluster.frequenciesKHz, cluster.frequenciesKHz.dropFirst()).allSatisfy { $0 < $1 }, "\(cluster.name)")
        #expect(cluster.frequenciesKHz.count > 2 && cluster.frequenciesKHz.count <= 64, "\(cluster.name)")
    }

    /// intel_pstate hybrid with the firmware's _CPC: capacities from the HWP
    /// performance units of acpi_cppc (E 34 / P 60), ladders 400 MHz to each
    /// maximum with base_frequency on them, SMT siblings in their core's cluster.
    @Test func intelHybridWithCPPC() throws {
        let result = try Self.probe("intel-hybrid-4p8e")
        let expected = Topology(
            host: HostTopology(
                name: "intel-hybrid-4p8e", governor: .powersave, possibleCPUs: CPUList(0...15),
                clusters: [
                    HostCluster(name: "little", cpus: CPUList(8...15), capacity: 580, frequenciesKHz: Self.ladder(400_000, 3_400_000, plus: [1_500_000])),
                    HostCluster(name: "big", cpus: CPUList(0...7), capacity: 1024, frequenciesKHz: Self.ladder(400_000, 4_700_000, plus: [2_100_000])),
                ]),
            vms: [Self.mirrorVM(Array(repeating: "big", count: 8) + Array(repeating: "little", count: 8))])
        #expect(result.topology == expected)
        #expect(result.notes.contains { $0.contains("capacities from acpi_cppc/highest_perf") && $0.contains("CPUs 8-15: 34 -> 580") })
        #expect(result.notes.contains { $0.hasPrefix("intel_pstate lists no frequencies") && $0.contains("100 MHz steps, plus base_frequency") })
        #expect(result.topology.check() == [])
    }

    /// The case: no cpu_capacity, no table, no _CPC. The E-cores'
    /// capacity follows their maximum frequency (3.4 / 4.7 GHz), and each
    /// cluster's table ascends from cpuinfo_min_freq to its cpuinfo_max_freq.
    @Test func intelHybridWithoutCPPCFollowsMaximumFrequencies() throws {
        let result = try Self.probe("intel-hybrid-4p8e-no-cppc")
        let clusters = result.topology.host.clusters
        #expect(clusters.map(\.name) == ["little", "big"])
        #expect(clusters.map(\.cpus) == [CPUList(8...15), CPUList(0...7)])
        #expect(clusters.map(\.capacity) == [(1024 * 3_400_000 + 2_350_000) / 4_700_000, 1024])
        #expect(clusters.map(\.capacity) == [741, 1024])
        #expect(clusters.map(\.frequenciesKHz) == [Self.ladder(400_000, 3_400_000, plus: [1_500_000]), Self.ladder(400_000, 4_700_000, plus: [2_100_000])])
        Self.expectLadderShape(clusters[0], minimum: 400_000, maximum: 3_400_000)
        Self.expectLadderShape(clusters[1], minimum: 400_000, maximum: 4_700_000)
        #expect(clusters.allSatisfy { !$0.isNominal })
        #expect(result.notes.contains { $0.contains("capacities from each cluster's maximum frequency") && $0.contains("CPUs 8-15: 3400000 kHz -> 741") })
        #expect(result.topology.check() == [])
    }

    /// amd-pstate with preferred cores on Zen 5 + Zen 5c: capacity by maximum
    /// frequency per core type; the preferred-core ranks (which change at
    /// runtime) are a note, not a split; the ladder carries the non-linear knee.
    @Test func amdPreferredCoresSplitByCoreTypeOnly() throws {
        let result = try Self.probe("amd-zen5-4-8c")
        let zen5 = CPUList([0, 1, 2, 3, 12, 13, 14, 15]), zen5c = CPUList(Array(4...11) + Array(16...23))
        let expected = Topology(
            host: HostTopology(
                name: "amd-zen5-4-8c", governor: .powersave, possibleCPUs: CPUList(0...23),
                clusters: [
                    HostCluster(name: "little", cpus: zen5c, capacity: 664, frequenciesKHz: Self.ladder(600_000, 3_298_701, plus: [1_064_935])),
                    HostCluster(name: "big", cpus: zen5, capacity: 1024, frequenciesKHz: Self.ladder(600_000, 5_090_909, plus: [1_064_935])),
                ]),
            vms: [Self.mirrorVM((0..<24).map { zen5.contains($0) ? "big" : "little" })])
        #expect(result.topology == expected)
        #expect(result.notes.contains { $0.hasPrefix("amd-pstate preferred cores: amd_pstate_prefcore_ranking 127...236, CPUs 0,12 rank highest") })
        #expect(result.notes.contains { $0.contains("plus amd_pstate_lowest_nonlinear_freq") })
        #expect(!result.notes.contains { $0.contains("acpi_cppc") }, "CPPC highest_perf is a rank on AMD, not a capacity")
        #expect(result.topology.check() == [])
    }

    /// One DSU cluster (cluster_id 0 everywhere) with three policies: the
    /// policies make the clusters, cpu_capacity their capacities, the listed
    /// frequencies their tables.
    @Test func dynamIQPhoneThreePoliciesOneClusterID() throws {
        let result = try Self.probe("dynamiq-4-4-1")
        let expected = Topology(
            host: HostTopology(
                name: "dynamiq-4-4-1", governor: .schedutil, possibleCPUs: CPUList(0...8),
                clusters: [
                    HostCluster(name: "little", cpus: CPUList(0...3), capacity: 248, frequenciesKHz: [324000, 610000, 820000, 955000, 1098000, 1197000, 1328000, 1425000, 1548000, 1704000]),
                    HostCluster(name: "mid", cpus: CPUList(4...7), capacity: 667, frequenciesKHz: [402000, 578000, 697000, 721000, 840000, 1010000, 1183000, 1378000, 1519000, 1663000, 1795000, 1957000, 2130000, 2253000, 2367000]),
                    HostCluster(name: "big", cpus: CPUList([8]), capacity: 1024, frequenciesKHz: [500000, 730000, 850000, 980000, 1090000, 1257000, 1387000, 1524000, 1663000, 1794000, 1905000, 2015000, 2130000, 2245000, 2365000, 2491000, 2611000, 2707000, 2847000, 2914000]),
                ]),
            vms: [Self.mirrorVM(["little", "little", "little", "little", "mid", "mid", "mid", "mid", "big"])])
        #expect(result.topology == expected)
        #expect(result.notes == [])
    }

    /// possible 0-31, present 0-23, online 0-5,8-23; CPUs 6-7's policies are
    /// inactive, so (as on a live host) every read of them answers EBUSY.
    /// The probe describes the 22 CPUs it knows and says what it left out.
    @Test func serverWithOfflineCPUsAndAHole() throws {
        let hook = SyscallHook()
        hook.on("open", where: { $0.text.contains("/cpufreq/policy6/") || $0.text.contains("/cpufreq/policy7/") }, .fail(.resourceBusy))
        let snapshot = try SyscallHook.withHook(hook) { try SysfsReader(root: Fixtures.sysfs("server-offline-hole"), cpuinfoPath: nil).snapshot() }
        let result = SysfsProbe.topology(from: snapshot, hostName: "server")
        let online = CPUList(Array(0...5) + Array(8...23))
        let expected = Topology(
            host: HostTopology(
                name: "server", governor: .performance, possibleCPUs: online,
                clusters: [HostCluster(name: "cpu", cpus: online, capacity: 1024, frequenciesKHz: Self.ladder(800_000, 3_300_000))]),
            vms: [Self.mirrorVM(Array(repeating: "cpu", count: 22))])
        #expect(result.topology == expected)
        #expect(result.topology.host.clusters[0].frequenciesKHz.contains(2_100_000), "base_frequency is on the ladder")
        #expect(snapshot.cpus.map(\.id) == Array(0...23), "no cpuN directory for 24-31")
        #expect(snapshot.cpus.filter { !$0.isOnline }.map(\.id) == [6, 7])
        #expect(result.notes.contains("cannot read cpufreq/policy6/related_cpus, cpufreq/policy7/related_cpus (\(Errno.resourceBusy.description))"))
        #expect(result.notes.contains { $0.hasPrefix("CPUs 6-7 are offline and no readable cpufreq policy describes them: left out of host.cpus") })
        #expect(result.notes.contains("CPUs 24-31 are possible but not present (no cpuN directory): left out of host.cpus and every cluster"))
        #expect(result.topology.check() == [])

        // Read without the fault, the inactive policies look like any other:
        // CPUs 6-7 are then described by them.
        let readable = try Self.probe("server-offline-hole")
        #expect(readable.topology.host.clusters.map(\.cpus) == [CPUList(0...23)])
        #expect(readable.notes.contains("CPUs 6-7 are offline: described by their cpufreq policy (related_cpus), in that policy's cluster"))
    }

    /// The cpufreq directory is mode 000 in a copy of the tree, probed by an
    /// unprivileged user (setpriv to uid 65534 when the tests run as root): a
    /// real EACCES. The probe says so, keeps the clusters the topology files
    /// give (cluster_id, cpu_capacity), and marks the tables nominal without
    /// claiming the host has no cpufreq driver.
    @Test(.enabled(if: getuid() != 0 || FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs setpriv (util-linux) as root"))
    func unreadableCpufreqDirectory() throws {
        let copy = CLI.temporaryPath("sysfs")
        try FileManager.default.copyItem(atPath: Fixtures.sysfs("unreadable-cpufreq"), toPath: copy)
        let cpufreq = "\(copy)/devices/system/cpu/cpufreq"
        #expect(chmod(copy, 0o755) == 0)
        #expect(chmod(cpufreq, 0) == 0)
        defer {
            _ = chmod(cpufreq, 0o755)
            try? FileManager.default.removeItem(atPath: copy)
        }
        let topology: Topology
        let notes: [String]
        if getuid() == 0 {
            let run = try CLI.run(["topology", "probe", "--sysfs-root", copy, "--name", "unreadable"], prefix: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
            #expect(run.status == 0, "\(run.stderr)")
            let decoded = TopologyFile.decode(run.stdout)
            topology = try #require(decoded.0, "\(decoded.1)")
            notes = run.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("note: ") }.map { String($0.dropFirst(6)) }
        } else {
            let result = SysfsProbe.topology(from: try SysfsReader(root: copy, cpuinfoPath: nil).snapshot(), hostName: "unreadable")
            (topology, notes) = (result.topology, result.notes)
        }
        let expected = Topology(
            host: HostTopology(
                name: "unreadable", governor: nil, possibleCPUs: CPUList(0...7),
                clusters: [
                    HostCluster(name: "little", cpus: CPUList(0...3), capacity: 485, frequenciesKHz: SysfsProbe.fallbackNominalTableKHz, isNominal: true),
                    HostCluster(name: "big", cpus: CPUList(4...7), capacity: 1024, frequenciesKHz: SysfsProbe.fallbackNominalTableKHz, isNominal: true),
                ]),
            vms: [Self.mirrorVM(["little", "little", "little", "little", "big", "big", "big", "big"])])
        #expect(topology == expected)
        #expect(notes == [
            "cannot read devices/system/cpu/cpufreq (\(Errno.permissionDenied.description)): no frequency data, so every cluster got "
                + "the nominal table 1000000, 2000000 kHz (nominal = true) and the governor is left unset; probe as a user who can read it"
        ])
    }

    /// Every fixture's probed file passes `topology check` and renders.
    @Test(arguments: ["intel-hybrid-4p8e", "intel-hybrid-4p8e-no-cppc", "amd-zen5-4-8c", "dynamiq-4-4-1", "server-offline-hole", "unreadable-cpufreq"])
    func probedFilesCheckAndRender(fixture: String) throws {
        let topology = try Self.probe(fixture).topology
        #expect(topology.check() == [])
        let encoded = TopologyFile.encode(topology)
        let (decoded, diagnostics) = TopologyFile.decode(encoded)
        #expect(diagnostics.filter { $0.severity == .error } == [])
        #expect(decoded == topology)
        _ = try DeviceTree.render(topology)
    }
}

/// Shapes without a fixture tree, from hand-built snapshots.
@Suite struct SysfsProbeInferenceTests {
    static func amdCore(_ id: Int, maxKHz: Int, highest: Int) -> SysfsCPU {
        SysfsCPU(
            id: id,
            policy: SysfsPolicy(
                relatedCPUs: CPUList([id]), minimumFrequencyKHz: 545_000, maximumFrequencyKHz: maxKHz, governor: "schedutil",
                driver: "amd-pstate", amdPState: SysfsAMDPState(highestPerformance: highest, maximumFrequencyKHz: maxKHz, lowestNonlinearFrequencyKHz: 1_807_000)))
    }

    /// Before Linux 6.9 (no preferred-core support in amd-pstate) each core's
    /// maximum came from its own CPPC highest perf: the preferred cores show a
    /// higher cpuinfo_max_freq and get their own, faster cluster.
    @Test func amdPreferredCoresWithAHigherMaximum() {
        let cpus = [Self.amdCore(0, maxKHz: 5_881_000, highest: 231), Self.amdCore(1, maxKHz: 5_881_000, highest: 231)]
            + (2...7).map { Self.amdCore($0, maxKHz: 5_500_000, highest: 216) }
        let result = SysfsProbe.topology(from: SysfsSnapshot(possibleCPUs: CPUList(0...7), cpus: cpus), hostName: "h")
        #expect(result.topology.host.clusters.map(\.cpus) == [CPUList(2...7), CPUList([0, 1])])
        #expect(result.topology.host.clusters.map(\.capacity) == [958, 1024])  // 1024 × 5500000 / 5881000 = 957.7
        #expect(result.topology.host.clusters.map { $0.frequenciesKHz.last } == [5_500_000, 5_881_000])
        #expect(result.topology.host.clusters.allSatisfy { $0.frequenciesKHz.contains(1_807_000) })
    }

    /// An offline CPU of a shared policy is in related_cpus: it joins its cluster.
    @Test func offlineCPUOfASharedPolicyJoinsItsCluster() {
        let policy = SysfsPolicy(relatedCPUs: CPUList(0...3), availableFrequenciesKHz: [500_000, 1_000_000], governor: "schedutil")
        let cpus = (0...3).map { SysfsCPU(id: $0, isOnline: $0 != 3, capacity: $0 == 3 ? nil : 512, policy: policy) }
        let result = SysfsProbe.topology(from: SysfsSnapshot(possibleCPUs: CPUList(0...3), cpus: cpus), hostName: "h")
        #expect(result.topology.host.clusters.map(\.cpus) == [CPUList(0...3)])
        #expect(result.topology.host.clusters.map(\.capacity) == [512])
        #expect(result.notes == ["CPU 3 is offline: described by its cpufreq policy (related_cpus), in that policy's cluster"])
    }

    /// More than 64 listed frequencies: 64 kept, spread evenly, ends kept.
    @Test func longListedTableIsThinned() {
        let listed = Array(stride(from: 100_000, through: 10_000_000, by: 100_000))  // 100 entries
        let policy = SysfsPolicy(relatedCPUs: CPUList([0]), availableFrequenciesKHz: listed, governor: "schedutil")
        let result = SysfsProbe.topology(from: SysfsSnapshot(possibleCPUs: CPUList([0]), cpus: [SysfsCPU(id: 0, capacity: 1024, policy: policy)]), hostName: "h")
        let table = result.topology.host.clusters[0].frequenciesKHz
        #expect(table.count == 64)
        #expect(table.first == 100_000 && table.last == 10_000_000)
        #expect(Set(table).isSubset(of: Set(listed)) && table == table.sorted())
        #expect(result.notes == ["the policy of CPUs 0 lists 100 frequencies: kept 64 spread evenly (the guest driver's limit)"])
        #expect(result.topology.check() == [])
    }
}

@Suite struct FrequencyLadderTests {
    @Test(arguments: [
        // min, max, named, step, count
        (400_000, 4_700_000, [2_100_000], 100_000, 44),
        (600_000, 5_090_909, [1_064_935], 100_000, 47),
        (800_000, 3_300_000, [], 100_000, 26),
        (100_000, 10_000_000, [], 200_000, 51),  // 101 at 100 MHz: too many
        (1_000_000, 100_000_000, [], 2_000_000, 51),  // past 1 GHz the step doubles
        (400_000, 4_700_000, [100_000, 9_000_000, 400_000], 100_000, 44),  // named points outside (min, max) are dropped
    ] as [(Int, Int, [Int], Int, Int)])
    func stepRule(minimum: Int, maximum: Int, named: [Int], step: Int, count: Int) {
        let (table, used) = FrequencyLadder.ladder(minimumKHz: minimum, maximumKHz: maximum, namedKHz: named)
        #expect(used == step)
        #expect(table.count == count)
        #expect(table.first == minimum && table.last == maximum)
        #expect(table == table.sorted() && Set(table).count == table.count)
        #expect(table.dropFirst().dropLast().allSatisfy { $0 % step == 0 || named.contains($0) })
    }

    @Test func degenerateRangesGiveTheMaximum() {
        #expect(FrequencyLadder.ladder(minimumKHz: 2_000_000, maximumKHz: 2_000_000).table == [2_000_000])
        #expect(FrequencyLadder.ladder(minimumKHz: 3_000_000, maximumKHz: 2_000_000).table == [2_000_000])
        #expect(FrequencyLadder.ladder(minimumKHz: 0, maximumKHz: 2_000_000).table == [2_000_000])
    }
}
