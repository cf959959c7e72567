import CVCPUFreqABI
import Foundation
import Testing
@testable import VCPUFreqCore

/// The C header shipped to VMM and guest authors equals the Swift side,
/// constant by constant and field by field, and compiles cleanly as C.
@Suite struct ABIHeaderTests {
    @Test func addressMapConstants() {
        #expect(UInt64(VCPUFREQ_DEFAULT_BASE) == DeviceAddressMap.defaultBase)
        #expect(UInt64(VCPUFREQ_REGION_SPAN) == DeviceAddressMap.regionSpan)
        #expect(UInt64(VCPUFREQ_UPSTREAM_OFFSET) == DeviceAddressMap.upstreamOffset)
        #expect(UInt64(VCPUFREQ_UTIL_HINT_OFFSET) == DeviceAddressMap.utilHintOffset)
        #expect(UInt64(VCPUFREQ_SHARED_PAGE_OFFSET) == DeviceAddressMap.sharedPageOffset)
        #expect(UInt64(VCPUFREQ_DOORBELL_OFFSET) == DeviceAddressMap.doorbellOffset)
        #expect(UInt64(VCPUFREQ_DOORBELL_STRIDE) == DeviceAddressMap.doorbellStride)
        #expect(UInt64(VCPUFREQ_TOTAL_SPAN) == DeviceAddressMap.totalSpan)
        #expect(Int(VCPUFREQ_MAX_VCPUS) == SharedPageABI.maximumVCPUs)
    }

    @Test func upstreamConstants() {
        #expect(UInt64(VCPUFREQ_UP_WINDOW_SIZE) == UpstreamABI.windowSize)
        #expect(Int(VCPUFREQ_UP_REG_WIDTH) == UpstreamABI.registerWidth)
        #expect(Int(VCPUFREQ_UP_PERFTBL_MAX_ENTRIES) == UpstreamABI.maximumTableEntries)
        let c: [UpstreamABI.Register: UInt32] = [
            .curPerf: VCPUFREQ_UP_REG_CUR_PERF, .setPerf: VCPUFREQ_UP_REG_SET_PERF, .perftblLen: VCPUFREQ_UP_REG_PERFTBL_LEN,
            .perftblSel: VCPUFREQ_UP_REG_PERFTBL_SEL, .perftblRd: VCPUFREQ_UP_REG_PERFTBL_RD, .perfDomain: VCPUFREQ_UP_REG_PERF_DOMAIN,
        ]
        #expect(c.count == UpstreamABI.Register.allCases.count)
        for register in UpstreamABI.Register.allCases { #expect(c[register].map(UInt64.init) == register.rawValue, "\(register.name)") }
    }

    @Test func utilHintConstants() {
        #expect(UInt64(VCPUFREQ_UH_WINDOW_SIZE) == UtilHintABI.windowSize)
        #expect(Int(VCPUFREQ_UH_REG_WIDTH) == UtilHintABI.registerWidth)
        #expect(VCPUFREQ_UTIL_MAX == UtilHintABI.maximumUtilization)
        let c: [UtilHintABI.Register: UInt32] = [
            .utilHint: VCPUFREQ_UH_REG_UTIL_HINT, .curFreq: VCPUFREQ_UH_REG_CUR_FREQ, .freqtblLen: VCPUFREQ_UH_REG_FREQTBL_LEN,
            .freqtblSel: VCPUFREQ_UH_REG_FREQTBL_SEL, .freqtblRd: VCPUFREQ_UH_REG_FREQTBL_RD, .capacity: VCPUFREQ_UH_REG_CAPACITY,
            .utilCap: VCPUFREQ_UH_REG_UTIL_CAP, .appliedUtil: VCPUFREQ_UH_REG_APPLIED_UTIL,
        ]
        #expect(c.count == UtilHintABI.Register.allCases.count)
        for register in UtilHintABI.Register.allCases { #expect(c[register].map(UInt64.init) == register.rawValue, "\(register.name)") }
    }

    @Test func sharedPageConstantsAndFlags() {
        typealias P = SharedPageABI
        #expect(VCPUFREQ_SP_MAGIC == P.magic)
        #expect(VCPUFREQ_SP_VERSION == P.version)
        #expect(Int(VCPUFREQ_SP_HEADER_SIZE) == P.headerSize)
        #expect(Int(VCPUFREQ_SP_SLOT_SIZE) == P.slotSize)
        for n in [0, 1, 2, 8, 63, 64, 1024] {
            #expect(Int(VCPUFREQ_SP_HEADER_SIZE + VCPUFREQ_SP_SLOT_SIZE * UInt32(n) + 4095) & ~4095 == P.regionSize(vcpuCount: n))
        }
        let header: [(UInt32, Int)] = [
            (VCPUFREQ_SP_HDR_MAGIC, P.Header.magic), (VCPUFREQ_SP_HDR_VERSION, P.Header.version), (VCPUFREQ_SP_HDR_FEATURES, P.Header.features),
            (VCPUFREQ_SP_HDR_HOST_STATUS, P.Header.hostStatus), (VCPUFREQ_SP_HDR_VCPU_COUNT, P.Header.vcpuCount),
            (VCPUFREQ_SP_HDR_SLOT_OFFSET, P.Header.slotOffset), (VCPUFREQ_SP_HDR_SLOT_SIZE, P.Header.slotSize),
            (VCPUFREQ_SP_HDR_POLL_INTERVAL_US, P.Header.pollIntervalMicroseconds), (VCPUFREQ_SP_HDR_GENERATION, P.Header.generation),
            (VCPUFREQ_SP_HDR_DOORBELL_COUNT, P.Header.doorbellCount),
        ]
        for (c, swift) in header { #expect(Int(c) == swift) }
        let slot: [(UInt32, Int)] = [
            (VCPUFREQ_SP_SLOT_SEQUENCE, P.Slot.sequence), (VCPUFREQ_SP_SLOT_FLAGS, P.Slot.flags), (VCPUFREQ_SP_SLOT_UTILIZATION, P.Slot.utilization),
            (VCPUFREQ_SP_SLOT_PERF_KHZ, P.Slot.performanceKHz), (VCPUFREQ_SP_SLOT_HOST_AREA, P.Slot.hostArea),
            (VCPUFREQ_SP_SLOT_HOST_SEQUENCE, P.Slot.hostSequence), (VCPUFREQ_SP_SLOT_CUR_PERF_KHZ, P.Slot.currentPerformanceKHz),
            (VCPUFREQ_SP_SLOT_APPLIED_CLAMP, P.Slot.appliedClamp), (VCPUFREQ_SP_SLOT_HOST_FLAGS, P.Slot.hostFlags),
            (VCPUFREQ_SP_SLOT_ACK_SEQUENCE, P.Slot.acknowledgedSequence), (VCPUFREQ_SP_SLOT_APPLIED_SLICE_US, P.Slot.appliedSliceMicroseconds),
        ]
        for (c, swift) in slot { #expect(Int(c) == swift) }
        #expect(VCPUFREQ_FEATURE_KICK_SUPPRESSION == P.Feature.kickSuppression.rawValue)
        #expect(VCPUFREQ_FEATURE_UTILIZATION == P.Feature.utilization.rawValue)
        #expect(VCPUFREQ_FEATURE_PERFORMANCE == P.Feature.performance.rawValue)
        #expect(VCPUFREQ_FEATURE_LATENCY_HINT == P.Feature.latencyHint.rawValue)
        #expect(VCPUFREQ_FEATURE_BOOST == P.Feature.boost.rawValue)
        #expect(VCPUFREQ_STATUS_ACTIVE == P.HostStatus.active.rawValue)
        #expect(VCPUFREQ_STATUS_DEGRADED == P.HostStatus.degraded.rawValue)
        #expect(VCPUFREQ_GUEST_F_LATENCY_SENSITIVE == P.GuestFlags.latencySensitive.rawValue)
        #expect(VCPUFREQ_GUEST_F_BOOST == P.GuestFlags.boost.rawValue)
        #expect(VCPUFREQ_GUEST_F_UTIL_VALID == P.GuestFlags.utilValid.rawValue)
        #expect(VCPUFREQ_GUEST_F_PERF_VALID == P.GuestFlags.perfValid.rawValue)
        #expect(VCPUFREQ_GUEST_F_KNOWN == P.GuestFlags.known.rawValue)
        #expect(VCPUFREQ_HOST_F_KICK == P.HostSlotFlags.kick.rawValue)
        #expect(VCPUFREQ_HOST_F_CAPPED == P.HostSlotFlags.capped.rawValue)
        #expect(VCPUFREQ_HOST_F_REJECTED == P.HostSlotFlags.rejected.rawValue)
        #expect(VCPUFREQ_HOST_F_ACTUATION_FAILED == P.HostSlotFlags.actuationFailed.rawValue)
    }

    @Test func structLayoutsEqualTheOffsets() {
        typealias P = SharedPageABI
        #expect(MemoryLayout<vcpufreq_shared_header>.size == P.headerSize)
        #expect(MemoryLayout<vcpufreq_slot>.size == P.slotSize)
        let header: [(PartialKeyPath<vcpufreq_shared_header>, Int)] = [
            (\.magic, P.Header.magic), (\.version, P.Header.version), (\.features, P.Header.features), (\.host_status, P.Header.hostStatus),
            (\.vcpu_count, P.Header.vcpuCount), (\.slot_offset, P.Header.slotOffset), (\.slot_size, P.Header.slotSize),
            (\.poll_interval_us, P.Header.pollIntervalMicroseconds), (\.generation, P.Header.generation), (\.doorbell_count, P.Header.doorbellCount),
        ]
        for (path, offset) in header { #expect(MemoryLayout<vcpufreq_shared_header>.offset(of: path) == offset, "\(path)") }
        let slot: [(PartialKeyPath<vcpufreq_slot>, Int)] = [
            (\.sequence, P.Slot.sequence), (\.flags, P.Slot.flags), (\.utilization, P.Slot.utilization), (\.perf_khz, P.Slot.performanceKHz),
            (\.host_sequence, P.Slot.hostSequence), (\.cur_perf_khz, P.Slot.currentPerformanceKHz), (\.applied_clamp, P.Slot.appliedClamp),
            (\.host_flags, P.Slot.hostFlags), (\.ack_sequence, P.Slot.acknowledgedSequence), (\.applied_slice_us, P.Slot.appliedSliceMicroseconds),
        ]
        for (path, offset) in slot { #expect(MemoryLayout<vcpufreq_slot>.offset(of: path) == offset, "\(path)") }
        // The guest area ends where the host area starts.
        #expect(MemoryLayout<vcpufreq_slot>.offset(of: \.guest_reserved)! + 16 == P.Slot.hostArea)
    }

    /// The C guest helpers talk to the Swift host (and back) on one page.
    @Test func cGuestHelpersInteroperateWithTheSwiftHost() {
        let memory = AtomicSharedPageMemory(vcpuCount: 2)
        let header = memory.rawPointer.assumingMemoryBound(to: vcpufreq_shared_header.self)
        #expect(vcpufreq_header_usable(header, 0) == 0, "not initialised yet")
        var host = SharedPageHost(memory: memory, maxPerformanceKHz: [1_000_000, 2_000_000])
        host.initialize(pollIntervalMicroseconds: 250, generation: 3, doorbellCount: 2)
        #expect(vcpufreq_header_usable(header, 1) != 0)
        #expect(vcpufreq_header_usable(header, 2) == 0, "no slot 2")
        let slot = vcpufreq_slot_of(header, 1)!
        #expect(UnsafeMutableRawPointer(slot) - memory.rawPointer == 128)
        let flags = VCPUFREQ_GUEST_F_PERF_VALID | VCPUFREQ_GUEST_F_LATENCY_SENSITIVE
        #expect(vcpufreq_slot_publish(slot, flags, 0, 1_500_000) != 0, "kicks wanted")
        #expect(host.consume(slot: 1) == .request(
            GuestRequest(vcpu: 1, performanceKHz: 1_500_000, latencySensitive: true, source: .sharedPage), sequence: 2, faults: []))
        host.publish(slot: 1, currentPerformanceKHz: 1_200_000, hint: HostHint(utilMin: 10, utilMax: 20, latency: .slice(microseconds: 300)), flags: [])
        var view = vcpufreq_host_view()
        #expect(vcpufreq_slot_read_host(slot, &view, 4) != 0)
        #expect(view.cur_perf_khz == 1_200_000 && view.applied_clamp == 10 | 20 << 16 && view.applied_slice_us == 300)
        #expect(view.host_flags == VCPUFREQ_HOST_F_KICK && view.host_sequence == 4)
        host.suppressKicks(slots: [1])
        #expect(vcpufreq_slot_publish(slot, VCPUFREQ_GUEST_F_UTIL_VALID, 77, 0) == 0, "suppressed")
        #expect(host.requestKicks(slots: [1]) == [1])
    }

    /// The header compiles as C99 and C11 with every warning an error, and
    /// its helpers are used, so unused-parameter and conversion slips show.
    @Test(arguments: ["c99", "c11", "gnu11"])
    func headerCompilesWithoutWarnings(standard: String) throws {
        let include = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/CVCPUFreqABI/include").path
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-abi-\(standard)-\(getpid()).c")
        try """
            #include "vcpufreq_abi.h"
            int use(struct vcpufreq_shared_header *h, volatile uint32_t *bell);
            int use(struct vcpufreq_shared_header *h, volatile uint32_t *bell) {
                struct vcpufreq_host_view view;
                struct vcpufreq_slot *slot = vcpufreq_slot_of(h, 0);
                if (!vcpufreq_header_usable(h, 0)) return -1;
                if (vcpufreq_slot_publish(slot, VCPUFREQ_GUEST_F_UTIL_VALID, 512u, 0u)) vcpufreq_ring_doorbell(bell);
                return vcpufreq_slot_read_host(slot, &view, 4u) ? (int)view.cur_perf_khz : (int)VCPUFREQ_SP_REGION_SIZE(2);
            }
            """.write(to: source, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: source) }
        let clang = Process()
        clang.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        clang.arguments = ["clang", "-std=\(standard)", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror",
                           "-fsyntax-only", "-I", include, source.path]
        let errors = Pipe()
        clang.standardError = errors
        try clang.run()
        clang.waitUntilExit()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(clang.terminationStatus == 0, "\(output)")
    }
}
