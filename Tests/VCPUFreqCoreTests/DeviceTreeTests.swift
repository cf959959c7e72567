import Foundation
import Testing
@testable import VCPUFreqCore

@Suite struct DeviceTreeTests {
    /// The guest kernel's arithmetic (drivers/base/arch_topology.c,
    /// topology_normalize_cpu_scale), written out here independently:
    /// raw = dmips × (max_freq_kHz / divisor); capacity = (raw << 10) / max raw.
    /// divisor 1 is Linux 6.8+ (capacity_freq_ref in kHz), 1000 the older freq_factor in MHz.
    static func kernelCapacities(dmips: [UInt32], maxKHz: [Int], divisor: UInt64) -> [Int] {
        let raw = zip(dmips, maxKHz).map { UInt64($0) * max(UInt64($1) / divisor, 1) }
        let scale = max(raw.max()!, 1)
        return raw.map { Int(($0 << 10) / scale) }
    }

    static func compiled(_ source: String) throws -> DeviceTreeBlob {
        let output = try DTC.compile(source)
        #expect(output.status == 0, "dtc failed: \(output.stderr)")
        #expect(output.stderr == "", "dtc warnings: \(output.stderr)")
        return try DeviceTreeBlob(output.stdout)
    }

    @Test(arguments: SampleTopologies.all(tableMode: .table) + [SampleTopologies.phone(tableMode: .maxOnly)])
    func compiledTreeMatchesTheTopology(topology: Topology) throws {
        let profile = topology.vms[0]
        let tree = try Self.compiled(try DeviceTree.render(topology))
        let root = tree.root
        #expect(root.cells("#address-cells") == [2])
        #expect(root.cells("#size-cells") == [2])

        // cpus: one cpu@N per vCPU.
        let cpus = try #require(root.child("cpus"))
        #expect(cpus.cells("#address-cells") == [1])
        #expect(cpus.cells("#size-cells") == [0])
        var phandleToVCPU: [UInt32: Int] = [:]
        var dmips: [UInt32] = []
        for vcpu in 0..<profile.vcpuCount {
            let node = try #require(cpus.child("cpu@\(String(vcpu, radix: 16))"), "cpu@\(vcpu)")
            #expect(node.cells("reg") == [UInt32(vcpu)])
            #expect(node.strings("device_type") == ["cpu"])
            #expect(node.strings("enable-method") == ["psci"])
            let phandle = try #require(node.cells("phandle")?.first)
            phandleToVCPU[phandle] = vcpu
            dmips.append(try #require(node.cells("capacity-dmips-mhz")?.first))
        }
        #expect(cpus.children.filter { $0.name.hasPrefix("cpu@") }.count == profile.vcpuCount)

        // Capacities recomputed as the guest kernel would equal the modeled host capacities.
        let modeled = profile.clusters.map { name in topology.host.clusters.first { $0.name == name }! }
        let maxKHz = modeled.map { $0.frequenciesKHz.max()! }
        #expect(Self.kernelCapacities(dmips: dmips, maxKHz: maxKHz, divisor: 1) == modeled.map(\.capacity))
        #expect(Self.kernelCapacities(dmips: dmips, maxKHz: maxKHz, divisor: 1000) == modeled.map(\.capacity))

        // cpu-map: one cluster per modeled host cluster, in first-appearance order.
        var expectedGroups: [[Int]] = []
        var seen: [String] = []
        for (vcpu, name) in profile.clusters.enumerated() {
            if let index = seen.firstIndex(of: name) { expectedGroups[index].append(vcpu) } else {
                seen.append(name)
                expectedGroups.append([vcpu])
            }
        }
        let map = try #require(cpus.child("cpu-map"))
        #expect(map.children.map(\.name) == expectedGroups.indices.map { "cluster\($0)" })
        for (index, group) in expectedGroups.enumerated() {
            let cluster = try #require(map.child("cluster\(index)"))
            #expect(cluster.children.map(\.name) == group.indices.map { "core\($0)" })
            let members = cluster.children.compactMap { $0.cells("cpu")?.first.flatMap { phandleToVCPU[$0] } }
            #expect(members == group)
        }

        // The virtual-cpufreq node.
        let base = profile.baseAddress
        let node = try #require(root.child("cpufreq@\(String(base, radix: 16))"))
        #expect(node.strings("compatible") == ["qemu,virtual-cpufreq"])
        let size = UInt64(0x1000 * profile.vcpuCount)
        #expect(node.cells("reg") == [UInt32(base >> 32), UInt32(base & 0xffff_ffff), UInt32(size >> 32), UInt32(size & 0xffff_ffff)])
    }

    @Test func baseOverrideAbove4GiBUsesBothCells() throws {
        let tree = try Self.compiled(try DeviceTree.render(SampleTopologies.laptop(), baseAddress: 0x1_2345_6000))
        let node = try #require(tree.root.child("cpufreq@123456000"))
        #expect(node.cells("reg") == [0x1, 0x2345_6000, 0, 0x6000])
    }

    @Test func unknownVMIsAnError() {
        #expect(throws: TopologyError.self) { try DeviceTree.render(SampleTopologies.phone(), vm: "nope") }
    }

    @Test func brokenTopologyIsNotRendered() {
        var topology = SampleTopologies.phone()
        topology.host.clusters[0].capacity = 2000
        #expect(throws: TopologyError.self) { try DeviceTree.render(topology) }
    }

    /// The phone's values by hand: big alone at 1024 gets 1024; little needs
    /// dmips in [160·2802000/1803000, 161·2802000/1803000) = [248.65, 250.20) → 249;
    /// mid: [498·2802000/2253000, 499·…) = [619.34, 620.58) → 620.
    @Test func phoneValuesByHand() throws {
        let model = try SampleTopologies.phone().model()
        #expect(model.dmipsPerMHz == [249, 249, 249, 249, 620, 620, 1024, 1024])
    }

    /// Many capacity/frequency mixes, from a fixed-seed generator: the guest's
    /// capacities always equal the targets, including two top clusters with
    /// different maximum frequencies (which needs an exact common raw value).
    @Test func exactForGeneratedMixes() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ range: ClosedRange<Int>) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return range.lowerBound + Int((seed >> 33) % UInt64(range.count))
        }
        for _ in 0..<500 {
            let count = next(1...6)
            var targets: [DeviceTree.CapacityTarget] = (0..<count).map { _ in
                .init(capacity: next(1...1024), maxFrequencyKHz: UInt32(next(200...4000) * 1000 + next(0...1) * next(0...999)))
            }
            targets[next(0...(count - 1))].capacity = 1024
            if count > 2, next(0...1) == 1 { targets[0].capacity = 1024 }
            let dmips = DeviceTree.dmipsPerMHz(for: targets)
            let capacities = Self.kernelCapacities(dmips: dmips, maxKHz: targets.map { Int($0.maxFrequencyKHz) }, divisor: 1)
            #expect(capacities == targets.map(\.capacity), "\(targets) → \(dmips)")
        }
    }

    @Test func topCapacityBelow1024ScalesLikeTheGuest() {
        let targets: [DeviceTree.CapacityTarget] = [.init(capacity: 256, maxFrequencyKHz: 1_000_000), .init(capacity: 512, maxFrequencyKHz: 2_000_000)]
        let dmips = DeviceTree.dmipsPerMHz(for: targets)
        #expect(Self.kernelCapacities(dmips: dmips, maxKHz: [1_000_000, 2_000_000], divisor: 1) == [512, 1024])
    }

    /// Three top clusters with unrelated kHz maxima: no exact common raw value
    /// fits in 32-bit dmips, so the fallback keeps every capacity within one.
    @Test func unrelatedTopFrequenciesStayWithinOne() {
        let maxima: [UInt32] = [3_999_971, 3_999_973, 3_999_977, 1_000_003]
        let targets = zip([1024, 1024, 1024, 300], maxima).map { DeviceTree.CapacityTarget(capacity: $0, maxFrequencyKHz: $1) }
        let dmips = DeviceTree.dmipsPerMHz(for: targets)
        let capacities = Self.kernelCapacities(dmips: dmips, maxKHz: maxima.map(Int.init), divisor: 1)
        for (got, want) in zip(capacities, targets.map(\.capacity)) { #expect(abs(got - want) <= 1, "\(capacities)") }
    }
}
