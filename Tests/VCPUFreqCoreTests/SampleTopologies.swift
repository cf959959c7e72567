@testable import VCPUFreqCore

/// Host shapes the tests run against, built in Swift (the TOML fixtures of
/// the same hosts live under Tests/Fixtures). Tables are real-world-like:
/// the phone is a Tensor-class 4+2+2 SoC with three distinct tables.
enum SampleTopologies {
    static let phoneLittle = [300_000, 574_000, 738_000, 930_000, 1_098_000, 1_197_000, 1_328_000, 1_401_000, 1_598_000, 1_704_000, 1_803_000]
    static let phoneMid = [400_000, 553_000, 696_000, 799_000, 910_000, 1_024_000, 1_197_000, 1_328_000, 1_491_000, 1_663_000, 1_836_000, 1_999_000, 2_130_000, 2_253_000]
    static let phoneBig = [500_000, 851_000, 984_000, 1_106_000, 1_277_000, 1_426_000, 1_582_000, 1_745_000, 1_826_000, 2_048_000, 2_188_000, 2_252_000, 2_401_000, 2_507_000, 2_630_000, 2_704_000, 2_802_000]

    /// 4 little + 2 mid + 2 big; one 8-vCPU VM mirroring the host, one domain per cluster.
    static func phone(tableMode: TableMode = .table, headroom: HeadroomCompensation = .none, utilCap: Int = 1024) -> Topology {
        Topology(
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
                    clusters: ["little", "little", "little", "little", "mid", "mid", "big", "big"],
                    utilCap: utilCap, headroom: headroom, tableMode: tableMode)
            ])
    }

    /// 4 + 4 big.LITTLE laptop; a 6-vCPU VM whose vCPUs 0-3 model little and
    /// 4-5 model big, with per-vCPU domains on the big side.
    static func laptop(tableMode: TableMode = .table) -> Topology {
        Topology(
            host: HostTopology(
                name: "laptop", governor: .schedutil,
                clusters: [
                    HostCluster(name: "little", cpus: CPUList(0...3), capacity: 382, frequenciesKHz: [500_000, 774_000, 1_000_000, 1_200_000, 1_500_000, 1_800_000, 2_000_000]),
                    HostCluster(name: "big", cpus: CPUList(4...7), capacity: 1024, frequenciesKHz: [500_000, 800_000, 1_100_000, 1_400_000, 1_700_000, 2_000_000, 2_200_000, 2_400_000]),
                ]),
            vms: [
                VMProfile(
                    name: "crostini", vcpuCount: 6,
                    clusters: ["little", "little", "little", "little", "big", "big"],
                    domains: [0, 0, 0, 0, 1, 2],
                    tableMode: tableMode)
            ])
    }

    /// A homogeneous 16-CPU server; a 16-vCPU VM with one domain.
    static func server(tableMode: TableMode = .table) -> Topology {
        Topology(
            host: HostTopology(
                name: "server", governor: .performance,
                clusters: [
                    HostCluster(name: "all", cpus: CPUList(0...15), capacity: 1024, frequenciesKHz: Array(stride(from: 1_200_000, through: 3_000_000, by: 100_000)))
                ]),
            vms: [VMProfile(name: "batch", vcpuCount: 16, clusters: Array(repeating: "all", count: 16), tableMode: tableMode)])
    }

    /// This development machine: 2 CPUs, no cpufreq, nominal table.
    static func thisMachine(tableMode: TableMode = .table) -> Topology {
        Topology(
            host: HostTopology(
                name: "dev", governor: HostGovernor.none,
                clusters: [HostCluster(name: "cpu", cpus: CPUList(0...1), capacity: 1024, frequenciesKHz: [1_000_000, 2_000_000], isNominal: true)]),
            vms: [VMProfile(name: "vm", vcpuCount: 2, clusters: ["cpu", "cpu"], tableMode: tableMode)])
    }

    static func all(tableMode: TableMode) -> [Topology] {
        [phone(tableMode: tableMode), laptop(tableMode: tableMode), server(tableMode: tableMode), thisMachine(tableMode: tableMode)]
    }
}
