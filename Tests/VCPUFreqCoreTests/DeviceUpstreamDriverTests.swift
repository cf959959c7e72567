import Testing
@testable import VCPUFreqCore

/// The upstream driver, replayed against the device for every sample host in
/// both table modes. Expectations come from the topology (cluster tables and
/// domains), never from the device.
@Suite struct DeviceUpstreamDriverTests {
    /// Sample hosts by name (short test-case labels), in both modes.
    static let cases: [(String, TableMode)] = ["phone", "laptop", "server", "dev"].flatMap { [($0, .table), ($0, .maxOnly)] }

    static func sample(_ name: String, _ mode: TableMode) -> Topology {
        SampleTopologies.all(tableMode: mode).first { $0.host.name == name }!
    }

    /// The policies the driver must build, derived from the VM profile
    /// (`Topology.guestPolicies`, itself checked against hand-written tables
    /// in GuestPolicyTests): one per distinct domain, owned by its lowest
    /// vCPU, with the cluster's table.
    static func expectedPolicies(_ topology: Topology) throws -> [UpstreamDriverModel.Policy] {
        try topology.guestPolicies().map {
            .init(cpu: $0.cpu, cpus: $0.cpus, table: $0.frequenciesKHz?.map { UInt32($0) },
                  minKHz: UInt32($0.minimumKHz), maxKHz: UInt32($0.maximumKHz))
        }
    }

    @Test(arguments: cases)
    func probeAndInitBuildTheTopologysPolicies(host: String, mode: TableMode) throws {
        let topology = Self.sample(host, mode)
        var driver = UpstreamDriverModel(device: DeviceModel(vm: try topology.model()))
        try driver.probeAndInit(possibleCPUs: topology.vms[0].vcpuCount)
        #expect(try driver.policies == Self.expectedPolicies(topology))
        #expect(driver.requests.isEmpty, "probe and init must not request anything")
        #expect(driver.device.counters.invalidTotal == 0, "the driver never makes an invalid access")
    }

    @Test(arguments: cases)
    func perTickScaleIsFullSpeedUntilTheHostSaysOtherwise(host: String, mode: TableMode) throws {
        let topology = Self.sample(host, mode)
        var driver = UpstreamDriverModel(device: DeviceModel(vm: try topology.model()))
        try driver.probeAndInit(possibleCPUs: topology.vms[0].vcpuCount)
        for policy in driver.policies {
            for cpu in policy.cpus {
                #expect(driver.scaleFrequencyTick(cpu: cpu, policy: policy) == 1024)
                // Half the max: the tick's arch_freq_scale must read half (rounded down).
                driver.device.setCurrentPerformance(vcpu: cpu, kHz: policy.maxKHz / 2)
                #expect(driver.scaleFrequencyTick(cpu: cpu, policy: policy) == (UInt64(policy.maxKHz / 2) << 10) / UInt64(policy.maxKHz))
            }
        }
    }

    /// schedutil fast switch over a range of utilizations: the request is for
    /// policy->cpu whichever member wrote it, at the frequency the guest chose.
    @Test(arguments: cases)
    func fastSwitchRequestsWhatSchedutilChose(host: String, mode: TableMode) throws {
        let topology = Self.sample(host, mode)
        let model = try topology.model()
        var driver = UpstreamDriverModel(device: DeviceModel(vm: model))
        try driver.probeAndInit(possibleCPUs: model.vcpuCount)
        for policy in driver.policies {
            let capacity = UInt64(model.vcpus[policy.cpu].capacity)
            let hostTable = topology.host.clusters[model.vcpus[policy.cpu].cluster].frequenciesKHz.map { UInt64($0) }
            for (step, utilization) in stride(from: 0, through: 1100, by: 7).enumerated() {
                let executing = policy.cpus[step % policy.cpus.count]
                let chosen = UpstreamDriverModel.schedutilNextFrequency(policy, utilization: UInt64(utilization), capacity: capacity)
                let before = driver.requests.count
                let result = driver.fastSwitch(policy, frequencyKHz: chosen, executing: executing)
                #expect(result.invalid == nil)
                #expect(driver.requests.count == before + 1)
                #expect(result.request == GuestRequest(vcpu: policy.cpu, performanceKHz: chosen, source: .upstreamRegister))
                // The chosen frequency, recomputed from the host's table by hand.
                let raw = hostTable.last! * min(UInt64(utilization) * 5 / 4, capacity) / capacity
                let expected: UInt64
                switch mode {
                case .table: expected = hostTable.first { $0 >= raw } ?? hostTable.last!
                case .maxOnly: expected = max(raw, 1)
                }
                #expect(UInt64(chosen) == expected, "util \(utilization) on \(policy)")
            }
        }
        #expect(driver.device.counters.invalidTotal == 0)
    }

    /// The target() path may write from a CPU outside the policy: the request
    /// is still for the window's vCPU, and counted against the writer.
    @Test func requestFollowsTheWindowNotTheWriter() throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        let result = device.access(.write(vcpu: 0, offset: 6 * 0x1000 + 0x4, value: 2_802_000))
        #expect(result.request == GuestRequest(vcpu: 6, performanceKHz: 2_802_000, source: .upstreamRegister))
        #expect(device.counters.requests(vcpu: 0) == 1)
        #expect(device.counters.requests(vcpu: 6) == 0)
    }

    /// A value between table entries resolves like CPUFREQ_RELATION_L would.
    @Test(arguments: [
        (UInt32(1), UInt32(300_000)), (299_999, 300_000), (300_000, 300_000), (300_001, 574_000),
        (1_000_000, 1_098_000), (1_803_000, 1_803_000), (1_802_999, 1_803_000),
    ])
    func tableModeResolvesToTheLowestEntryAtOrAbove(written: UInt32, resolved: UInt32) throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        let result = device.access(.write(vcpu: 1, offset: 1 * 0x1000 + 0x4, value: UInt64(written)))
        #expect(result.request?.performanceKHz == resolved)
        #expect(result.invalid == nil)
    }

    @Test(arguments: [UInt32(1), 2, 299_999, 1_000_001, 1_803_000])
    func maxOnlyModeTakesAnyValueUpToMax(written: UInt32) throws {
        var device = DeviceModel(vm: try SampleTopologies.phone(tableMode: .maxOnly).model())
        let result = device.access(.write(vcpu: 1, offset: 1 * 0x1000 + 0x4, value: UInt64(written)))
        #expect(result.request?.performanceKHz == written)
        #expect(result.invalid == nil)
    }

    /// Even a model that skipped `Topology.check()` never makes the driver
    /// refuse to probe: perftbl_len stays within 1...64.
    @Test(arguments: [0, 1, 64, 65, 200])
    func perftblLenIsAlwaysProbeable(entries: Int) throws {
        let table = (0..<entries).map { UInt32(100_000 + $0 * 1000) }
        let vcpu = VCPUModel(index: 0, cluster: 0, capacity: 1024, frequenciesKHz: table, performanceDomain: 0,
                             hostCPUs: CPUList([0]), hostMaxFrequencyKHz: table.last ?? 1, hostCapacity: 1024)
        let vm = VMModel(name: "raw", vcpus: [vcpu], utilCap: 1024, compensateHeadroom: false, tableMode: .table,
                         baseAddress: DeviceAddressMap.defaultBase, pin: false, policy: PolicySettings())
        var driver = UpstreamDriverModel(device: DeviceModel(vm: vm))
        try driver.probeAndInit(possibleCPUs: 1)
        #expect(driver.perftblNumEntries == [UInt32(min(max(entries, 1), 64))])
    }
}

extension DeviceUpstreamDriverTests {
    /// Every sample name resolves, so no case silently tests nothing.
    @Test func everySampleIsCovered() {
        let names = Set(Self.cases.map(\.0))
        #expect(names == Set(SampleTopologies.all(tableMode: .table).map(\.host.name)))
    }
}
