import Foundation
import Testing
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqProtocol

/// Device-space offsets, written out from docs/abi.md (not taken from the
/// code under test).
enum Offset {
    /// Upstream window of `vcpu`: cur_perf 0x00, set_perf 0x04, perftbl_len
    /// 0x08, perftbl_sel 0x0c, perftbl_rd 0x10, perf_domain 0x14.
    static func upstream(_ vcpu: Int, _ register: UInt64) -> UInt64 { UInt64(vcpu) * 0x1000 + register }
    static let curPerf: UInt64 = 0x00, setPerf: UInt64 = 0x04, perftblLen: UInt64 = 0x08
    static let perftblSel: UInt64 = 0x0c, perftblRd: UInt64 = 0x10, perfDomain: UInt64 = 0x14

    /// Util-hint window of `vcpu` at +0x400000: util_hint 0x00, cur_freq 0x04,
    /// freqtbl_len 0x08, freqtbl_sel 0x0c, freqtbl_rd 0x10, capacity 0x14,
    /// util_cap 0x18, applied_util 0x1c.
    static func utilHint(_ vcpu: Int, _ register: UInt64) -> UInt64 { 0x40_0000 + UInt64(vcpu) * 0x1000 + register }
    static let utilHint: UInt64 = 0x00, curFreq: UInt64 = 0x04, freqtblLen: UInt64 = 0x08, freqtblSel: UInt64 = 0x0c
    static let freqtblRd: UInt64 = 0x10, capacity: UInt64 = 0x14, utilCap: UInt64 = 0x18, appliedUtil: UInt64 = 0x1c

    /// Doorbell `index` at +0x880000, stride 4.
    static func doorbell(_ index: Int) -> UInt64 { 0x88_0000 + 4 * UInt64(index) }
}

/// The invalid code READ_OK/WRITE_OK carry: the kind + 1.
func invalidCode(_ kind: InvalidAccess) -> UInt32 { UInt32(kind.rawValue) + 1 }

/// A daemon, two idle vCPU threads and a client attached as VM `name`.
struct AttachedVM {
    let daemon: Daemon
    let threads: VCPUThreads
    let client: VCPUFreqClient
    let attach: DaemonMessage.AttachOK

    init(daemon: Daemon, name: String = "guest", profile: String = "regs", vcpus: Int = 2) throws {
        self.daemon = daemon
        threads = try VCPUThreads(count: vcpus)
        client = try daemon.client()
        attach = try client.attach(vmName: name, profile: profile, threadIDs: threads.tids)
    }

    /// The record's apply lines for this VM's threads, as (vcpu, util_min, util_max, latency, cpus).
    func applies() -> [Applied] {
        let tids = Set(threads.tids)
        return daemon.records().filter { $0.action == "apply" && tids.contains($0.tid) }.map {
            Applied(vcpu: $0.vcpu, utilMin: $0.utilMin, utilMax: $0.utilMax, latency: $0.latency, cpus: $0.cpus)
        }
    }
}

struct Applied: Equatable, CustomStringConvertible {
    var vcpu: Int
    var utilMin: Int
    var utilMax: Int
    var latency = "none"
    var cpus: String?
    var description: String { "vcpu \(vcpu) util \(utilMin)...\(utilMax) \(latency) cpus \(cpus ?? "-")" }
}

/// The pin of `vcpu` in the record's list format.
func pinText(_ vcpu: Int) -> String { TestTopology.pinnedCPUs[vcpu].map(String.init).joined(separator: ",") }

extension DaemonTests {
    @Suite struct Registers {
        /// Attach pins each thread; the upstream driver's probe (perftbl_len,
        /// then perftbl_sel/perftbl_rd per entry, perf_domain) and its
        /// per-tick cur_perf read see the topology's table.
        @Test func attachAndProbeSequence() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            #expect(vm.attach.vcpuCount == 2)
            #expect(vm.attach.baseAddress == TestTopology.baseAddress)
            #expect(vm.attach.profile == "regs")
            #expect(vm.attach.actuators.contains("affinity=on"))
            #expect(vm.threads.live.map(\.cpus) == TestTopology.pinnedCPUs)

            let client = vm.client
            for vcpu in 0..<2 {
                let length = try client.read(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.perftblLen))
                #expect(length.value == UInt64(TestTopology.tableKHz.count) && length.invalid == 0)
                var table: [UInt64] = []
                for index in 0..<length.value {
                    try client.write(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.perftblSel), value: index)
                    let entry = try client.read(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.perftblRd))
                    #expect(entry.invalid == 0)
                    table.append(entry.value)
                }
                #expect(table == TestTopology.tableKHz.map(UInt64.init))
                // Domains [0, 1] in the topology.
                #expect(try client.read(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.perfDomain)).value == UInt64(vcpu))
                // No cpufreq here: the host runs at its nominal maximum, and
                // the vCPU models that same cluster, so cur_perf is the max.
                #expect(try client.read(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.curPerf)).value == UInt64(TestTopology.maxKHz))

                // The util-hint window of the same vCPU.
                #expect(try client.read(vcpu: vcpu, offset: Offset.utilHint(vcpu, Offset.freqtblLen)).value == 3)
                try client.write(vcpu: vcpu, offset: Offset.utilHint(vcpu, Offset.freqtblSel), value: 1)
                #expect(try client.read(vcpu: vcpu, offset: Offset.utilHint(vcpu, Offset.freqtblRd)).value == 1_500_000)
                #expect(try client.read(vcpu: vcpu, offset: Offset.utilHint(vcpu, Offset.curFreq)).value == UInt64(TestTopology.maxKHz))
                #expect(try client.read(vcpu: vcpu, offset: Offset.utilHint(vcpu, Offset.capacity)).value == 1024)
                #expect(try client.read(vcpu: vcpu, offset: Offset.utilHint(vcpu, Offset.utilCap)).value == 1000)
            }
            // Invalid guest accesses are answered, not protocol errors.
            let writeOnly = try client.read(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf))
            #expect(writeOnly.value == 0 && writeOnly.invalid == invalidCode(.readOfWriteOnly))
            let badWidth = try client.read(vcpu: 0, offset: Offset.upstream(0, Offset.curPerf), width: 3)
            #expect(badWidth.value == 0 && badWidth.invalid == invalidCode(.badWidth))
            let beyond = try client.read(vcpu: 0, offset: Offset.upstream(5, Offset.curPerf))
            #expect(beyond.invalid == invalidCode(.beyondLastVCPU))
            let wrongVCPU = try client.read(vcpu: 4096, offset: Offset.upstream(0, Offset.curPerf))
            #expect(wrongVCPU.invalid == invalidCode(.vcpuOutOfRange))
            let unmapped = try client.read(vcpu: 0, offset: 0xFFFF_FFFF_FFFF_FFF0)
            #expect(unmapped.invalid == invalidCode(.unmapped))
            try client.write(vcpu: 0, offset: Offset.upstream(0, Offset.perftblSel), value: 99)
            let outOfRange = try client.read(vcpu: 0, offset: Offset.upstream(0, Offset.perftblRd))
            #expect(outOfRange.value == 0 && outOfRange.invalid == invalidCode(.tableIndexOutOfRange))

            // Status counts the reads and the invalid accesses.
            let status = try client.status()
            let counters = try #require(status.vms.first { $0.name == "guest" }?.counters)
            #expect(counters.invalidAccesses == 6)
            #expect(counters.accesses >= 30)
        }

        /// set_perf and util_hint writes become hints: util = 1024 × perf /
        /// max, capped at the profile's util_cap; one record line (and one
        /// syscall at most) per change, none for a repeat.
        @Test func writesBecomeHints() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            let client = vm.client
            let cap = 1000

            try client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: 1_500_000)
            try client.write(vcpu: 1, offset: Offset.utilHint(1, Offset.utilHint), value: 300)
            for _ in 0..<5 { try client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: 1_500_000) }
            // Between two entries: the guest's cpufreq core would pick the next
            // entry up (1,500,000), so nothing changes either.
            try client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: 1_200_000)
            // applied_util reads what was applied (the read is ordered after the writes).
            #expect(try client.read(vcpu: 0, offset: Offset.utilHint(0, Offset.appliedUtil)).value == 768)
            #expect(try client.read(vcpu: 1, offset: Offset.utilHint(1, Offset.appliedUtil)).value == 300)
            #expect(TestTopology.utilization(forKHz: 1_500_000) == 768)

            try client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: 1_000_000)
            // SYNC writes report invalid codes: above max is clamped to max (then the cap) ...
            let above = try client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: 3_000_000, sync: true)
            #expect(above == invalidCode(.performanceAboveMax))
            // ... 0 is ignored ...
            let zero = try client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: 0, sync: true)
            #expect(zero == invalidCode(.performanceZero))
            // ... and a util above 1024 is clamped (then capped).
            let huge = try client.write(vcpu: 1, offset: Offset.utilHint(1, Offset.utilHint), value: 5000, sync: true)
            #expect(huge == invalidCode(.utilizationAboveMax))
            #expect(try client.write(vcpu: 1, offset: Offset.utilHint(1, Offset.utilHint), value: 0, sync: true) == 0)

            let pins = [pinText(0), pinText(1)]
            let expected = [
                // Attach: each thread pinned, nothing requested yet.
                Applied(vcpu: 0, utilMin: 0, utilMax: cap, cpus: pins[0]),
                Applied(vcpu: 1, utilMin: 0, utilMax: cap, cpus: pins[1]),
                Applied(vcpu: 0, utilMin: TestTopology.utilization(forKHz: 1_500_000), utilMax: cap, cpus: pins[0]),
                Applied(vcpu: 1, utilMin: 300, utilMax: cap, cpus: pins[1]),
                Applied(vcpu: 0, utilMin: TestTopology.utilization(forKHz: 1_000_000), utilMax: cap, cpus: pins[0]),
                Applied(vcpu: 0, utilMin: min(cap, TestTopology.utilization(forKHz: 2_000_000)), utilMax: cap, cpus: pins[0]),
                Applied(vcpu: 1, utilMin: cap, utilMax: cap, cpus: pins[1]),
                Applied(vcpu: 1, utilMin: 0, utilMax: cap, cpus: pins[1]),
            ]
            #expect(vm.applies() == expected)

            let status = try #require(try client.status().vms.first)
            #expect(status.vcpus.map(\.utilMin) == [UInt16(cap), 0])
            #expect(status.vcpus.map(\.tid) == vm.threads.tids)
            #expect(status.vcpus[0].lastRequest == "set_perf 2000000 kHz")
            #expect(status.vcpus[1].lastRequest == "util_hint util 0")
            #expect(status.vcpus.map(\.requests) == [9, 3])
            #expect(status.vcpus[0].capped)
        }
    }
}
