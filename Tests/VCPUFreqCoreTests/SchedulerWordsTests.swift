import CVCPUFreqABI
import Testing
@testable import VCPUFreqCore

/// The host words BPF writes into a BPF-map page (docs/abi.md, "Host words
/// written by BPF"), the caps it applies and the CPU table it reads: the
/// Swift encodings equal the C header's bits, words worked out by hand
/// decode to their fields, and the caps follow the policy's own limits.
@Suite struct SchedulerWordsTests {
    typealias Seen = SharedPageABI.SchedulerSeen
    typealias Placement = SharedPageABI.SchedulerPlacement

    @Test("the C header's offsets, feature and bits are the Swift ones")
    func headerConstants() {
        #expect(Int(VCPUFREQ_SP_SLOT_SCHED_SEEN) == SharedPageABI.Slot.schedulerSeen)
        #expect(Int(VCPUFREQ_SP_SLOT_SCHED_PLACEMENT) == SharedPageABI.Slot.schedulerPlacement)
        #expect(MemoryLayout<vcpufreq_slot>.offset(of: \.sched_seen) == SharedPageABI.Slot.schedulerSeen)
        #expect(MemoryLayout<vcpufreq_slot>.offset(of: \.sched_placement) == SharedPageABI.Slot.schedulerPlacement)
        #expect(VCPUFREQ_FEATURE_HOST_SCHEDULER == SharedPageABI.Feature.hostScheduler.rawValue)
        #expect(!SharedPageABI.Feature.all.contains(.hostScheduler))
        #expect(VCPUFREQ_SEEN_SEQUENCE_MASK == Seen.sequenceMask)
        #expect(VCPUFREQ_SEEN_UTIL_SHIFT == Seen.utilizationShift && VCPUFREQ_SEEN_UTIL_MASK == Seen.utilizationMask)
        #expect(VCPUFREQ_SEEN_LATENCY == Seen.latencyBit && VCPUFREQ_SEEN_BOOST == Seen.boostBit)
        #expect(VCPUFREQ_SEEN_CAPPED == Seen.cappedBit && VCPUFREQ_SEEN_REJECTED == Seen.rejectedBit)
        #expect(VCPUFREQ_SEEN_UTIL_VALID == Seen.utilizationValidBit)
        #expect(VCPUFREQ_PLACE_CPU_MASK == Placement.cpuMask)
        #expect(VCPUFREQ_PLACE_CAPACITY_SHIFT == Placement.capacityShift && VCPUFREQ_PLACE_CAPACITY_MASK == Placement.capacityMask)
        #expect(VCPUFREQ_PLACE_CLUSTER_SHIFT == Placement.clusterShift && VCPUFREQ_PLACE_CLUSTER_MASK == Placement.clusterMask)
        #expect(VCPUFREQ_PLACE_DELAY_SHIFT == Placement.delayShift && VCPUFREQ_PLACE_DELAY_MASK == Placement.delayMask)
        #expect(Int(VCPUFREQ_PLACE_CLUSTER_UNKNOWN) == Placement.unknownCluster)
        // The fields of each word tile it exactly.
        #expect(Seen.sequenceMask | Seen.utilizationMask | Seen.latencyBit | Seen.boostBit | Seen.cappedBit
            | Seen.rejectedBit | Seen.utilizationValidBit == 0xFFFF_FFFF)
        #expect(Placement.cpuMask | Placement.capacityMask | Placement.clusterMask | Placement.delayMask == 0xFFFF_FFFF)
        #expect(Placement.cpuMask & Placement.capacityMask == 0 && Placement.capacityMask & Placement.clusterMask == 0
            && Placement.clusterMask & Placement.delayMask == 0)
    }

    @Test("sched_seen words, worked out by hand", arguments: [
        (Seen(sequence: 2, utilization: 500), UInt32(0x81F4_0002)),
        (Seen(sequence: 20, utilization: 600, capped: true, rejected: true), UInt32(0xE258_0014)),
        (Seen(sequence: 6, utilization: nil, rejected: true), UInt32(0x4000_0006)),
        (Seen(sequence: 0xFFFE, utilization: 1024, latencySensitive: true, boostGranted: true), UInt32(0x9C00_FFFE)),
        (Seen(sequence: 8, utilization: 0), UInt32(0x8000_0008)),
    ])
    func seenWords(seen: Seen, word: UInt32) {
        #expect(seen.word == word)
        #expect(Seen(word: word) == seen)
    }

    @Test("a zero word was never written")
    func zeroWords() {
        #expect(Seen(word: 0) == nil)
        #expect(Placement(word: 0) == nil)
        #expect(Placement(word: Placement.capacityMask | Placement.delayMask) == nil, "no CPU: never written")
    }

    @Test("sched_placement words, worked out by hand", arguments: [
        // CPU 1 (+1), capacity 1024 << 12, cluster 1 << 23, delay bucket 3 << 27.
        (Placement(cpu: 1, capacity: 1024, cluster: 1, runDelayBucket: 3), UInt32(0x18C0_0002)),
        (Placement(cpu: 0, capacity: 512, cluster: 0, runDelayBucket: 0), UInt32(0x0020_0001)),
        (Placement(cpu: 7, capacity: 0, cluster: nil, runDelayBucket: 31), UInt32(0xFF80_0008)),
        (Placement(cpu: 4094, capacity: 160, cluster: 14, runDelayBucket: 12), UInt32(0x670A_0FFF)),
    ])
    func placementWords(placement: Placement, word: UInt32) {
        #expect(placement.word == word)
        #expect(Placement(word: word) == placement)
    }

    @Test("placement fields saturate at their widths")
    func placementSaturation() {
        let word = Placement(cpu: 9000, capacity: 5000, cluster: 40, runDelayBucket: 99).word
        let decoded = Placement(word: word)
        #expect(decoded?.cpu == 4094 && decoded?.capacity == 1024 && decoded?.cluster == nil && decoded?.runDelayBucket == 31)
        #expect(Placement(cpu: 0, capacity: 0, cluster: 0, runDelayBucket: 5).runDelayAtLeastMicroseconds == 32)
    }

    @Test("the caps BPF applies are the policy's limits")
    func guestValueCaps() throws {
        let phone = SampleTopologies.phone(utilCap: 600)
        var caps = GuestValueCaps(vm: try phone.model())
        #expect(caps.utilizationCap == 600)
        #expect(caps.boostUtilization == 600, "boost_util 1024, cut to the cap")
        #expect(caps.maximumPerformanceKHz == 2_802_000, "the big vCPUs' highest entry")
        #expect(caps.features == [.utilization, .performance, .latencyHint, .boost])

        var quiet = SampleTopologies.phone()
        quiet.vms[0].policy.latencyHint = .none
        quiet.vms[0].policy.boostHoldMilliseconds = 0
        caps = GuestValueCaps(vm: try quiet.model())
        #expect(caps.utilizationCap == 1024 && caps.boostUtilization == 0)
        #expect(caps.features == [.utilization, .performance])

        // A VM capped to 0 has no influence at all: no latency hint, no boost.
        caps = GuestValueCaps(vm: try SampleTopologies.phone(utilCap: 0).model())
        #expect(caps.utilizationCap == 0 && caps.boostUtilization == 0 && caps.features == [.utilization, .performance])
    }

    @Test("the CPU table lists every topology CPU with its cluster index and capacity")
    func cpuTable() {
        let table = HostCPUTable(host: SampleTopologies.phone().host)
        #expect(table.entries.map(\.cpu) == Array(0...7))
        #expect(table.entries.map(\.cluster) == [0, 0, 0, 0, 1, 1, 2, 2])
        #expect(table.entries.map(\.capacity) == [160, 160, 160, 160, 498, 498, 1024, 1024])
        let odd = HostTopology(clusters: [
            HostCluster(name: "a", cpus: CPUList([5, 2]), capacity: 2000, frequenciesKHz: [1]),
            HostCluster(name: "b", cpus: CPUList([2, 9000]), capacity: 300, frequenciesKHz: [1]),
        ])
        #expect(HostCPUTable(host: odd).entries == [
            .init(cpu: 2, cluster: 0, capacity: 1024), .init(cpu: 5, cluster: 0, capacity: 1024),
        ], "a CPU listed twice keeps its first cluster; CPUs past the map are left out; capacities cut to 1024")
    }

    @Test("kick mode scheduler: never on a BPF-map page, adaptive on a memfd")
    func schedulerKickMode() {
        #expect(KickMode.scheduler.effective(bpfMapPage: true) == .never)
        #expect(KickMode.scheduler.effective(bpfMapPage: false) == .adaptive)
        for mode in [KickMode.adaptive, .always, .never] {
            #expect(mode.effective(bpfMapPage: true) == mode && mode.effective(bpfMapPage: false) == mode)
        }
    }
}
