import Testing
@testable import VCPUFreqCore

/// Valid accesses of the util-hint windows, doorbells, shared page bounds,
/// host-side inputs and the read-only mirror, against values taken from the
/// phone topology (little 160 / mid 498 / big 1024 capacity).
@Suite struct DeviceRegisterTests {
    typealias O = DeviceOffsets

    static func read(_ device: inout DeviceModel, _ offset: UInt64, vcpu: Int = 0) -> UInt64 {
        let result = device.access(.read(vcpu: vcpu, offset: offset))
        #expect(result.invalid == nil)
        return result.value
    }

    @Test(arguments: TableMode.allCases)
    func utilHintWindowServesTheFullTableCapacityAndCap(mode: TableMode) throws {
        let topology = SampleTopologies.phone(tableMode: mode, utilCap: 700)
        var device = DeviceModel(vm: try topology.model())
        let clusterOf = topology.vms[0].clusters
        for vcpu in 0..<8 {
            let cluster = topology.host.clusters.first { $0.name == clusterOf[vcpu] }!
            #expect(Self.read(&device, O.utilHint(vcpu, O.freqtblLen)) == UInt64(cluster.frequenciesKHz.count))
            for (index, kHz) in cluster.frequenciesKHz.enumerated() {
                #expect(device.access(.write(vcpu: vcpu, offset: O.utilHint(vcpu, O.freqtblSel), value: UInt64(index))).invalid == nil)
                #expect(Self.read(&device, O.utilHint(vcpu, O.freqtblRd)) == UInt64(kHz))
            }
            #expect(Self.read(&device, O.utilHint(vcpu, O.capacity)) == UInt64(cluster.capacity))
            #expect(Self.read(&device, O.utilHint(vcpu, O.utilCap)) == 700)
            #expect(Self.read(&device, O.utilHint(vcpu, O.curFreq)) == UInt64(cluster.frequenciesKHz.last!))
            #expect(Self.read(&device, O.utilHint(vcpu, O.appliedUtil)) == 0)
        }
    }

    @Test(arguments: [UInt32(0), 1, 512, 1023, 1024])
    func utilHintWriteIsARequestForTheWindowsVCPU(utilization: UInt32) throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        let result = device.access(.write(vcpu: 1, offset: O.utilHint(6, O.utilHintReg), value: UInt64(utilization)))
        #expect(result == AccessResult(request: GuestRequest(vcpu: 6, utilization: utilization, source: .utilHintRegister)))
        #expect(device.counters.requests(vcpu: 1) == 1)
    }

    @Test func hostInputsShowInCurPerfCurFreqAppliedUtilAndTheMirror() throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        let changed = device.setCurrentPerformance(vcpu: 4, kHz: 1_111_000)
        let again = device.setCurrentPerformance(vcpu: 4, kHz: 1_111_000)
        let beyond = device.setCurrentPerformance(vcpu: 8, kHz: 1)
        let negative = device.setCurrentPerformance(vcpu: -1, kHz: 1)
        #expect(changed)
        #expect(!again, "no change, no mirror refresh")
        #expect(!beyond && !negative, "a vCPU the VM lacks is ignored")
        device.setAppliedUtilization(vcpu: 4, 321)
        device.setAppliedUtilization(vcpu: 99, 1)
        #expect(Self.read(&device, O.upstream(4, O.curPerf)) == 1_111_000)
        #expect(Self.read(&device, O.utilHint(4, O.curFreq)) == 1_111_000)
        #expect(Self.read(&device, O.utilHint(4, O.appliedUtil)) == 321)
        #expect(device.mirrorValue(vcpu: 4, register: .curPerf) == 1_111_000)
        #expect(Self.read(&device, O.upstream(5, O.curPerf)) == 2_253_000, "other vCPUs keep their max")
    }

    @Test func mirrorMatchesReadsAndFlagsPerftblSelChanges() throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        #expect(device.mirrorValue(vcpu: 6, register: .perftblRd) == 500_000, "selection starts at entry 0")
        var result = device.access(.write(vcpu: 6, offset: O.upstream(6, O.perftblSel), value: 16))
        #expect(result.mirrorChanged == 6)
        #expect(device.mirrorValue(vcpu: 6, register: .perftblRd) == 2_802_000)
        result = device.access(.write(vcpu: 6, offset: O.upstream(6, O.perftblSel), value: 16))
        #expect(result.mirrorChanged == nil, "same entry: the mirror did not change")
        result = device.access(.write(vcpu: 6, offset: O.upstream(6, O.perftblSel), value: 17))
        #expect(result.mirrorChanged == 6, "out of range reads 0 in the mirror")
        #expect(device.mirrorValue(vcpu: 6, register: .perftblRd) == 0)
        result = device.access(.write(vcpu: 6, offset: O.upstream(6, O.perftblSel), value: 40))
        #expect(result.mirrorChanged == nil, "still 0")
        result = device.access(.write(vcpu: 6, offset: O.utilHint(6, O.freqtblSel), value: 3))
        #expect(result.mirrorChanged == nil, "util-hint windows are not mirrored")
        for register in UpstreamABI.Register.allCases where !register.isReadable {
            #expect(device.mirrorValue(vcpu: 6, register: register) == 0)
        }
        #expect(device.mirrorValue(vcpu: 8, register: .curPerf) == 0)
        #expect(device.mirrorValue(vcpu: 7, register: .perfDomain) == 2)
    }

    @Test(arguments: [1, 2, 4, 8])
    func doorbellWriteOfAnyWidthIsAKick(width: Int) throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        for index in 0..<8 {
            let result = device.access(.write(vcpu: 7 - index, offset: O.doorbell(index), width: width, value: 0))
            #expect(result == AccessResult(kick: index))
        }
        #expect(device.counters.kicks == 8)
        #expect(device.counters.invalidTotal == 0)
    }

    @Test(arguments: [(UInt64(0), 4), (0x40, 8), (0x13, 1), (0x22, 2), (0xffc, 4), (0xff8, 8)])
    func sharedPageAccessesGoBackToTheCaller(byte: UInt64, width: Int) throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        let read = device.access(.read(vcpu: 0, offset: O.sharedPage(byte), width: width))
        #expect(read == AccessResult(sharedPageOffset: byte))
        let write = device.access(.write(vcpu: 0, offset: O.sharedPage(byte), width: width, value: 7))
        #expect(write == AccessResult(sharedPageOffset: byte))
        #expect(device.counters.sharedPageAccesses == 2)
        #expect(device.counters.reads == 0, "memory accesses are not register reads")
    }

    @Test func countersSplitByExecutingVCPU() throws {
        var device = DeviceModel(vm: try SampleTopologies.phone().model())
        for _ in 0..<3 { _ = device.access(.read(vcpu: 2, offset: O.upstream(2, O.curPerf))) }
        _ = device.access(.read(vcpu: 5, offset: O.upstream(5, O.setPerf)))
        _ = device.access(.write(vcpu: 5, offset: O.upstream(0, O.setPerf), value: 1_000_000))
        #expect(device.counters.reads(vcpu: 2) == 3)
        #expect(device.counters.reads(vcpu: 5) == 0)
        #expect(device.counters.invalid(vcpu: 5) == 1)
        #expect(device.counters.requests(vcpu: 5) == 1)
        #expect(device.counters.accesses == 5)
        #expect(device.counters.reads(vcpu: 8) == 0)
    }
}
