import Foundation
import VCPUFreqCore

/// Paths of the shared fixtures under Tests/Fixtures, found from this file's
/// location so tests run from any working directory.
enum Fixtures {
    /// `<package>/Tests`
    static let testsDirectory: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)  // VCPUFreqConfigTests/Fixtures.swift
        return parts.joined(separator: "/")
    }()
    static let packageDirectory: String = {
        var parts = testsDirectory.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast()
        return parts.joined(separator: "/")
    }()
    static func topology(_ name: String) -> String { "\(testsDirectory)/Fixtures/topology/\(name).toml" }
    static func sysfs(_ name: String) -> String { "\(testsDirectory)/Fixtures/sysfs/\(name)" }
    /// The `vcpufreq` built with these tests: beside the running test bundle
    /// (any --scratch-path, a sanitizer build), else the package's debug build.
    static let binary: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let sibling = (exe as NSString).deletingLastPathComponent + "/vcpufreq"
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : "\(packageDirectory)/.build/debug/vcpufreq"
    }()
}

/// The topologies the fixture files describe, written out by hand from the
/// files (and, for the phone, from SampleTopologies in the core tests).
enum ExpectedTopologies {
    static let phoneLittle = [300_000, 574_000, 738_000, 930_000, 1_098_000, 1_197_000, 1_328_000, 1_401_000, 1_598_000, 1_704_000, 1_803_000]
    static let phoneMid = [400_000, 553_000, 696_000, 799_000, 910_000, 1_024_000, 1_197_000, 1_328_000, 1_491_000, 1_663_000, 1_836_000, 1_999_000, 2_130_000, 2_253_000]
    static let phoneBig = [500_000, 851_000, 984_000, 1_106_000, 1_277_000, 1_426_000, 1_582_000, 1_745_000, 1_826_000, 2_048_000, 2_188_000, 2_252_000, 2_401_000, 2_507_000, 2_630_000, 2_704_000, 2_802_000]
    static let laptopLittle = [500_000, 774_000, 1_000_000, 1_200_000, 1_500_000, 1_800_000, 2_000_000]
    static let laptopBig = [500_000, 800_000, 1_100_000, 1_400_000, 1_700_000, 2_000_000, 2_200_000, 2_400_000]
    static let serverTable = Array(stride(from: 1_200_000, through: 3_000_000, by: 100_000))

    static let phone = Topology(
        host: HostTopology(
            name: "phone", governor: .schedutil,
            clusters: [
                HostCluster(name: "little", cpus: CPUList(0...3), capacity: 160, frequenciesKHz: phoneLittle),
                HostCluster(name: "mid", cpus: CPUList(4...5), capacity: 498, frequenciesKHz: phoneMid),
                HostCluster(name: "big", cpus: CPUList(6...7), capacity: 1024, frequenciesKHz: phoneBig),
            ]),
        vms: [
            VMProfile(
                name: "android", vcpuCount: 8,
                clusters: ["little", "little", "little", "little", "mid", "mid", "big", "big"], headroom: .none)
        ])

    static let laptop: Topology = {
        var policy = PolicySettings()
        policy.hysteresis = 16
        policy.latencyHint = .nice
        policy.latencyNice = -10
        return Topology(
            host: HostTopology(
                name: "laptop", governor: .schedutil, possibleCPUs: CPUList(0...7),
                clusters: [
                    HostCluster(name: "little", cpus: CPUList(0...3), capacity: 382, frequenciesKHz: laptopLittle),
                    HostCluster(name: "big", cpus: CPUList(4...7), capacity: 1024, frequenciesKHz: laptopBig),
                ]),
            vms: [
                VMProfile(
                    name: "crostini", vcpuCount: 6,
                    clusters: ["little", "little", "little", "little", "big", "big"],
                    pinCPUs: [nil, nil, nil, nil, CPUList([4, 5]), CPUList([6, 7])],
                    domains: [0, 0, 0, 0, 1, 2], baseAddress: 0x200_0000, policy: policy)
            ])
    }()

    static let server = Topology(
        host: HostTopology(
            name: "server", governor: .performance,
            clusters: [HostCluster(name: "all", cpus: CPUList(0...15), capacity: 1024, frequenciesKHz: serverTable)]),
        vms: [
            VMProfile(
                name: "batch", vcpuCount: 16, clusters: Array(repeating: "all", count: 16), utilCap: 768,
                tableMode: .maxOnly)
        ])

    static let thisMachine = Topology(
        host: HostTopology(
            name: "dev", governor: HostGovernor.none,
            clusters: [
                HostCluster(name: "cpu", cpus: CPUList(0...1), capacity: 1024, frequenciesKHz: [1_000_000, 2_000_000], isNominal: true)
            ]),
        vms: [VMProfile(name: "vm", vcpuCount: 2, clusters: ["cpu", "cpu"], pin: false)])

    static let all: [(String, Topology)] = [
        ("phone", phone), ("laptop", laptop), ("server", server), ("this-machine", thisMachine),
    ]
}
