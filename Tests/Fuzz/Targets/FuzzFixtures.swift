import VCPUFreqConfig
import VCPUFreqCore

/// The topology files of Tests/Fixtures/topology (every valid one), read
/// once from the source tree the target was built from: the fuzz targets
/// serve the VMs the suite tests with, not ones of their own.
public enum FuzzFixtures {
    /// Tests/Fixtures, from this file's place in Tests/Fuzz/Support.
    public static let directory: String = {
        var path = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        path.removeLast(3)
        return path.joined(separator: "/") + "/Fixtures"
    }()

    public static let topologyNames = ["phone", "laptop", "server", "this-machine"]

    /// Text of Tests/Fixtures/topology/NAME.toml.
    public static func topologyText(_ name: String) -> String {
        let path = "\(directory)/topology/\(name).toml"
        do { return try TopologyFile.readText(path: path) } catch { fatalError("fixture \(path): \(error)") }
    }

    public static let topologies: [Topology] = topologyNames.map { name in
        guard let topology = TopologyFile.decode(topologyText(name)).topology else { fatalError("fixture \(name) is invalid") }
        return topology
    }

    /// Every VM profile of every fixture, resolved.
    public static let models: [VMModel] = topologies.flatMap { topology in
        topology.vms.map { profile in
            do { return try topology.model(forVM: profile.name) } catch { fatalError("fixture VM \(profile.name): \(error)") }
        }
    }

    /// The host of each of `models` (same index).
    public static let hosts: [HostTopology] = topologies.flatMap { topology in topology.vms.map { _ in topology.host } }
}

extension FuzzInput {
    /// One of the fixture VMs, its settings possibly replaced by any value
    /// (a hand-built `VMModel` is promised harmless, out-of-range settings
    /// included): table mode, cap, pinning and every policy knob.
    public mutating func vm() -> VMModel { vmAndHost().vm }

    /// `vm()` and the host topology of its fixture.
    public mutating func vmAndHost() -> (vm: VMModel, host: HostTopology) {
        let index = index(below: FuzzFixtures.models.count)
        var vm = FuzzFixtures.models[index]
        let overrides = byte()
        if overrides & 0x01 != 0 { vm.tableMode = bool() ? .table : .maxOnly }
        if overrides & 0x02 != 0 { vm.utilCap = Int(integer(Int16.self)) }
        if overrides & 0x04 != 0 { vm.pin.toggle() }
        if overrides & 0x08 != 0 { vm.compensateHeadroom.toggle() }
        if overrides & 0x10 != 0 {
            vm.policy.hysteresis = Int(integer(Int16.self))
            vm.policy.minimumIntervalMicroseconds = Int(integer(Int32.self))
        }
        if overrides & 0x20 != 0 {
            vm.policy.boostHoldMilliseconds = Int(integer(Int32.self))
            vm.policy.boostUtilization = Int(integer(Int16.self))
            vm.policy.idleDecayMilliseconds = Int(integer(Int32.self))
        }
        if overrides & 0x40 != 0 {
            vm.policy.latencyHint = element(of: LatencyHintKind.allCases)
            vm.policy.latencySliceMicroseconds = Int(integer(Int32.self))
            vm.policy.latencyNice = Int(integer(Int8.self))
        }
        if overrides & 0x80 != 0 {
            vm.policy.kickMode = element(of: KickMode.allCases)
            vm.policy.pollIntervalMicroseconds = Int(integer(Int32.self))
        }
        return (vm, FuzzFixtures.hosts[index])
    }
}
