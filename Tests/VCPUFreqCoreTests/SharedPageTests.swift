import Testing
@testable import VCPUFreqCore

/// Single-threaded behaviour of the shared page host and guest, against the
/// documented byte offsets (written out here, not taken from SharedPageABI).
@Suite struct SharedPageTests {
    /// Two vCPUs: max 1 803 000 kHz and 2 802 000 kHz.
    static let maxima: [UInt32] = [1_803_000, 2_802_000]
    static func slot(_ index: Int) -> Int { 64 + 64 * index }

    static func fresh(features: SharedPageABI.Feature = .all) -> (ArraySharedPageMemory, SharedPageHost<ArraySharedPageMemory>, SharedPageGuest<ArraySharedPageMemory>) {
        let memory = ArraySharedPageMemory(vcpuCount: 2)
        var host = SharedPageHost(memory: memory, maxPerformanceKHz: maxima)
        host.initialize(features: features, pollIntervalMicroseconds: 500, generation: 7, doorbellCount: 2)
        return (memory, host, SharedPageGuest(memory: memory, vcpuCount: 2))
    }

    @Test func initializeWritesTheHeaderAndHostAreasOnly() {
        let memory = ArraySharedPageMemory(vcpuCount: 2)
        #expect(memory.byteCount == 4096)
        for slot in 0..<2 { for word in stride(from: 0, to: 32, by: 4) { memory.store(Self.slot(slot) + word, 0xdead_0000 | UInt32(word)) } }
        var host = SharedPageHost(memory: memory, maxPerformanceKHz: Self.maxima)
        host.initialize(features: [.utilization, .boost], pollIntervalMicroseconds: 500, generation: 7, doorbellCount: 2)
        let header: [(Int, UInt32)] = [(0x00, 0x4650_4356), (0x04, 1), (0x08, 0b10010), (0x0c, 1), (0x10, 2), (0x14, 64), (0x18, 64), (0x1c, 500), (0x20, 7), (0x24, 2)]
        for (offset, value) in header { #expect(memory.load(offset) == value, "header +\(offset)") }
        // "VCPF" in memory order.
        #expect([0, 8, 16, 24].map { UInt8(truncatingIfNeeded: memory.load(0) >> $0) } == Array("VCPF".utf8))
        for slot in 0..<2 {
            let base = Self.slot(slot)
            for word in stride(from: 0, to: 32, by: 4) { #expect(memory.load(base + word) == 0xdead_0000 | UInt32(word), "guest area untouched") }
            #expect(memory.load(base + 0x20) == 2, "host sequence after one publication")
            #expect(memory.load(base + 0x24) == Self.maxima[slot])
            #expect(memory.load(base + 0x28) == 1024 << 16, "neutral clamp: util_min 0, util_max 1024")
            #expect(memory.load(base + 0x2c) == 1, "kick wanted")
            #expect(memory.load(base + 0x30) == 0)
            #expect(memory.load(base + 0x34) == 0)
        }
    }

    @Test func publishConsumeAcknowledge() {
        var (memory, host, guest) = Self.fresh()
        #expect(host.consume(slot: 1) == .unchanged)
        let ring = guest.publish(slot: 1, utilization: 640, performanceKHz: 2_000_000, flags: [.utilValid, .perfValid, .latencySensitive])
        #expect(ring, "kicks are wanted after initialize")
        #expect(memory.load(Self.slot(1)) == 2, "first publication has sequence 2")
        let expected = GuestRequest(vcpu: 1, performanceKHz: 2_000_000, utilization: 640, latencySensitive: true, boost: false, source: .sharedPage)
        #expect(host.consume(slot: 1) == .request(expected, sequence: 2, faults: []))
        #expect(guest.acknowledgedSequence(slot: 1) == 2)
        #expect(host.consume(slot: 1) == .unchanged)
        #expect(host.consume(slot: 0) == .unchanged)
        #expect(host.consume(slot: 2) == .noSuchSlot)
        #expect(host.consume(slot: -1) == .noSuchSlot)
        #expect(!guest.publish(slot: 2, utilization: 1, performanceKHz: 1, flags: []), "no such slot: nothing written")
        #expect(host.counters.consumed == 1)
        #expect(host.counters.unchanged == 3)
    }

    /// Validation of one publication: each field corrected or dropped on its
    /// own, faults counted, `rejected` set exactly when something was wrong.
    struct ValidationCase: Sendable, CustomTestStringConvertible {
        var label: String
        var features: SharedPageABI.Feature = .all
        var flags: UInt32
        var utilization: UInt32 = 0
        var performanceKHz: UInt32 = 0
        var expected: GuestRequest
        var faults: [InvalidAccess] = []
        var testDescription: String { label }
    }

    static let validationCases: [ValidationCase] = [
        .init(label: "util only", flags: 0b0100, utilization: 1024,
              expected: .init(vcpu: 0, utilization: 1024, latencySensitive: false, source: .sharedPage)),
        .init(label: "util 1025 clamped", flags: 0b0100, utilization: 1025,
              expected: .init(vcpu: 0, utilization: 1024, latencySensitive: false, source: .sharedPage), faults: [.utilizationAboveMax]),
        .init(label: "util max UInt32 clamped", flags: 0b0100, utilization: .max,
              expected: .init(vcpu: 0, utilization: 1024, latencySensitive: false, source: .sharedPage), faults: [.utilizationAboveMax]),
        .init(label: "util not valid: ignored", flags: 0, utilization: 5000,
              expected: .init(vcpu: 0, latencySensitive: false, source: .sharedPage)),
        .init(label: "perf 1", flags: 0b1000, performanceKHz: 1,
              expected: .init(vcpu: 0, performanceKHz: 1, latencySensitive: false, source: .sharedPage)),
        .init(label: "perf max", flags: 0b1000, performanceKHz: 1_803_000,
              expected: .init(vcpu: 0, performanceKHz: 1_803_000, latencySensitive: false, source: .sharedPage)),
        .init(label: "perf 0 dropped", flags: 0b1100, utilization: 10, performanceKHz: 0,
              expected: .init(vcpu: 0, utilization: 10, latencySensitive: false, source: .sharedPage), faults: [.performanceZero]),
        .init(label: "perf above max clamped", flags: 0b1000, performanceKHz: 1_803_001,
              expected: .init(vcpu: 0, performanceKHz: 1_803_000, latencySensitive: false, source: .sharedPage), faults: [.performanceAboveMax]),
        .init(label: "unknown bits ignored", flags: 0xffff_fff0 | 0b0110, utilization: 3,
              expected: .init(vcpu: 0, utilization: 3, latencySensitive: false, boost: true, source: .sharedPage), faults: [.unknownFlags]),
        .init(label: "three faults at once", flags: 0x100 | 0b1101, utilization: 2000, performanceKHz: .max,
              expected: .init(vcpu: 0, performanceKHz: 1_803_000, utilization: 1024, latencySensitive: true, source: .sharedPage),
              faults: [.unknownFlags, .utilizationAboveMax, .performanceAboveMax]),
        .init(label: "latency and boost", flags: 0b0011,
              expected: .init(vcpu: 0, latencySensitive: true, boost: true, source: .sharedPage)),
        .init(label: "features not offered are ignored", features: [.kickSuppression, .performance], flags: 0b1111, utilization: 9999, performanceKHz: 500_000,
              expected: .init(vcpu: 0, performanceKHz: 500_000, latencySensitive: nil, boost: false, source: .sharedPage)),
    ]

    @Test(arguments: validationCases)
    func validation(_ c: ValidationCase) {
        var (memory, host, guest) = Self.fresh(features: c.features)
        _ = guest.publish(slot: 0, utilization: c.utilization, performanceKHz: c.performanceKHz, flags: .init(rawValue: c.flags))
        var faults = InvalidAccessSet()
        for kind in c.faults { faults.insert(kind) }
        #expect(host.consume(slot: 0) == .request(c.expected, sequence: 2, faults: faults))
        for kind in InvalidAccess.allCases { #expect(host.counters[kind] == (c.faults.contains(kind) ? 1 : 0), "\(kind)") }
        let hostFlags = SharedPageABI.HostSlotFlags(rawValue: memory.load(Self.slot(0) + 0x2c))
        #expect(hostFlags.contains(.rejected) == !c.faults.isEmpty)
        #expect(hostFlags.contains(.kick))
        // A clean publication clears `rejected` again.
        _ = guest.publish(slot: 0, utilization: 1, performanceKHz: 0, flags: [.utilValid])
        _ = host.consume(slot: 0)
        #expect(!SharedPageABI.HostSlotFlags(rawValue: memory.load(Self.slot(0) + 0x2c)).contains(.rejected))
    }

    @Test func hostPublishIsReadConsistentlyAndKeepsOwnedFlags() {
        var (memory, host, guest) = Self.fresh()
        _ = guest.publish(slot: 1, utilization: 5000, performanceKHz: 0, flags: [.utilValid])
        _ = host.consume(slot: 1)  // sets `rejected`
        host.publish(slot: 1, currentPerformanceKHz: 1_234_000, hint: HostHint(utilMin: 300, utilMax: 700, latency: .slice(microseconds: 250)),
                     flags: [.capped, .actuationFailed, .kick])
        let area = guest.readHostArea(slot: 1)
        #expect(area == SharedPageGuest.HostArea(
            sequence: 4, currentPerformanceKHz: 1_234_000, utilMin: 300, utilMax: 700,
            flags: [.kick, .rejected, .capped, .actuationFailed], appliedSliceMicroseconds: 250))
        host.suppressKicks(slots: [1])
        host.publish(slot: 1, currentPerformanceKHz: 1, hint: HostHint(latency: .nice(-5)), flags: [.kick])
        #expect(guest.readHostArea(slot: 1)?.flags == [.rejected], "publish cannot turn kicks back on")
        #expect(guest.readHostArea(slot: 1)?.appliedSliceMicroseconds == 0)
        #expect(memory.load(Self.slot(0) + 0x20) == 2, "other slots untouched")
        memory.store(Self.slot(1) + 0x20, 7)
        #expect(guest.readHostArea(slot: 1) == nil, "host sequence odd: the guest retries, then gives up")
    }

    @Test func suppressedKicksAreRecoveredByTheRecheck() {
        var (_, host, guest) = Self.fresh()
        host.suppressKicks(slots: 0..<2)
        #expect(!host.kicksRequested(slot: 0))
        #expect(!guest.publish(slot: 0, utilization: 100, performanceKHz: 0, flags: [.utilValid]), "host polls: no doorbell")
        #expect(host.requestKicks(slots: 0..<2) == [0])
        #expect(host.counters.caughtByRecheck == 1)
        guard case .request(let request, _, _) = host.consume(slot: 0) else { Issue.record("lost"); return }
        #expect(request.utilization == 100)
        #expect(guest.publish(slot: 0, utilization: 200, performanceKHz: 0, flags: [.utilValid]), "kicks wanted again")
        #expect(host.requestKicks(slots: [1]) == [], "nothing new on slot 1")
    }

    @Test func aGuestStuckMidUpdateIsBusyNotFatal() {
        var (memory, host, guest) = Self.fresh()
        memory.store(Self.slot(0), 5)
        #expect(host.consume(slot: 0) == .busy)
        #expect(host.counters.busy == 1)
        // The guest recovers: its next publication goes from 5 to 6 to... 6.
        _ = guest.publish(slot: 0, utilization: 1, performanceKHz: 0, flags: [.utilValid])
        #expect(memory.load(Self.slot(0)) == 6)
        guard case .request(_, let sequence, _) = host.consume(slot: 0) else { Issue.record("not consumed"); return }
        #expect(sequence == 6)
    }

    @Test func sequenceWrapsAround() {
        var (memory, host, guest) = Self.fresh()
        memory.store(Self.slot(0), 0xffff_fffe)
        _ = guest.publish(slot: 0, utilization: 9, performanceKHz: 0, flags: [.utilValid])
        #expect(memory.load(Self.slot(0)) == 2, "0 means 'never published': skipped")
        guard case .request(let request, 2, _) = host.consume(slot: 0) else { Issue.record("not consumed"); return }
        #expect(request.utilization == 9)
    }

    /// Forwarded accesses (a VMM that did not map the page) emulated as
    /// little-endian memory.
    @Test func emulatedAccessesAreLittleEndian() {
        let memory = ArraySharedPageMemory(vcpuCount: 1)
        _ = memory.emulateAccess(offset: 0x40, width: 4, value: 0x1122_3344)
        #expect(memory.emulateAccess(offset: 0x40, width: 1, value: nil) == 0x44)
        #expect(memory.emulateAccess(offset: 0x43, width: 1, value: nil) == 0x11)
        #expect(memory.emulateAccess(offset: 0x42, width: 2, value: nil) == 0x1122)
        _ = memory.emulateAccess(offset: 0x41, width: 1, value: 0xaabb)
        #expect(memory.load(0x40) == 0x1122_bb44)
        _ = memory.emulateAccess(offset: 0x48, width: 8, value: 0x0102_0304_0506_0708)
        #expect(memory.load(0x48) == 0x0506_0708 && memory.load(0x4c) == 0x0102_0304)
        #expect(memory.emulateAccess(offset: 0x48, width: 8, value: nil) == 0x0102_0304_0506_0708)
        #expect(memory.emulateAccess(offset: 0x48, width: 3, value: nil) == 0)
        #expect(memory.emulateAccess(offset: 0x10_0000, width: 4, value: nil) == 0, "outside the region reads 0")
        #expect(memory.emulateAccess(offset: .max, width: 4, value: 1) == 0)
    }
}
