import Testing
@testable import VCPUFreqCore

/// Offsets of the device space written out from docs/abi.md, not taken from
/// `DeviceAddressMap`, so the tests pin the documented numbers.
enum DeviceOffsets {
    static func upstream(_ vcpu: Int, _ register: UInt64) -> UInt64 { UInt64(vcpu) * 0x1000 + register }
    static func utilHint(_ vcpu: Int, _ register: UInt64) -> UInt64 { 0x40_0000 + UInt64(vcpu) * 0x1000 + register }
    static func sharedPage(_ byte: UInt64) -> UInt64 { 0x80_0000 + byte }
    static func doorbell(_ index: Int) -> UInt64 { 0x88_0000 + 4 * UInt64(index) }
    static let curPerf: UInt64 = 0x00, setPerf: UInt64 = 0x04, perftblLen: UInt64 = 0x08
    static let perftblSel: UInt64 = 0x0c, perftblRd: UInt64 = 0x10, perfDomain: UInt64 = 0x14
    static let utilHintReg: UInt64 = 0x00, curFreq: UInt64 = 0x04, freqtblLen: UInt64 = 0x08, freqtblSel: UInt64 = 0x0c
    static let freqtblRd: UInt64 = 0x10, capacity: UInt64 = 0x14, utilCap: UInt64 = 0x18, appliedUtil: UInt64 = 0x1c
}

/// One bad access on the phone VM (8 vCPUs; vCPU 0 models the little
/// cluster, max 1 803 000 kHz, 11 entries) and its documented answer.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    var label: String
    var mode: TableMode = .table
    var setup: [GuestAccess] = []
    var access: GuestAccess
    var invalid: InvalidAccess
    var value: UInt64 = 0
    var request: GuestRequest? = nil
    var testDescription: String { label }
}

@Suite struct DeviceInvalidAccessTests {
    typealias O = DeviceOffsets
    static let littleMax: UInt32 = 1_803_000

    static let cases: [InvalidCase] = [
        // Widths
        .init(label: "width 0", access: .read(vcpu: 0, offset: O.upstream(0, O.curPerf), width: 0), invalid: .badWidth),
        .init(label: "width 3", access: .read(vcpu: 0, offset: O.upstream(0, O.curPerf), width: 3), invalid: .badWidth),
        .init(label: "width 16", access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), width: 16, value: 1), invalid: .badWidth),
        .init(label: "width -4", access: .read(vcpu: 0, offset: O.upstream(0, O.curPerf), width: -4), invalid: .badWidth),
        .init(label: "register read width 2", access: .read(vcpu: 0, offset: O.upstream(0, O.curPerf), width: 2), invalid: .badWidth),
        .init(label: "register read width 1", access: .read(vcpu: 0, offset: O.utilHint(0, O.capacity), width: 1), invalid: .badWidth),
        .init(label: "set_perf width 8", access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), width: 8, value: 1_000_000), invalid: .badWidth),
        .init(label: "util_hint width 2", access: .write(vcpu: 0, offset: O.utilHint(0, O.utilHintReg), width: 2, value: 10), invalid: .badWidth),
        // Alignment
        .init(label: "register offset +2", access: .read(vcpu: 0, offset: O.upstream(0, O.curPerf + 2)), invalid: .unaligned),
        .init(label: "set_perf offset +1", access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf + 1), value: 1_000_000), invalid: .unaligned),
        .init(label: "doorbell +1", access: .write(vcpu: 0, offset: O.doorbell(0) + 1, width: 1, value: 1), invalid: .unaligned),
        .init(label: "doorbell +2 width 2", access: .write(vcpu: 0, offset: O.doorbell(3) + 2, width: 2, value: 1), invalid: .unaligned),
        .init(label: "shared page word +2", access: .read(vcpu: 0, offset: O.sharedPage(2)), invalid: .unaligned),
        .init(label: "shared page quad +4", access: .read(vcpu: 0, offset: O.sharedPage(4), width: 8), invalid: .unaligned),
        // Unmapped
        .init(label: "after perf_domain", access: .read(vcpu: 0, offset: O.upstream(0, 0x18)), invalid: .unmapped),
        .init(label: "end of upstream window", access: .read(vcpu: 0, offset: O.upstream(2, 0xffc)), invalid: .unmapped),
        .init(label: "after applied_util", access: .write(vcpu: 0, offset: O.utilHint(0, 0x20), value: 1), invalid: .unmapped),
        .init(label: "past shared page region", access: .read(vcpu: 0, offset: O.sharedPage(0x1000)), invalid: .unmapped),
        .init(label: "end of device space", access: .read(vcpu: 0, offset: 0x88_1000), invalid: .unmapped),
        .init(label: "top of 64-bit space", access: .read(vcpu: 0, offset: UInt64.max - 3), invalid: .unmapped),
        .init(label: "UInt64.max width 1", access: .write(vcpu: 0, offset: UInt64.max, width: 1, value: 1), invalid: .unmapped),
        // vCPUs
        .init(label: "executing vCPU 8", access: .read(vcpu: 8, offset: O.upstream(0, O.curPerf)), invalid: .vcpuOutOfRange),
        .init(label: "executing vCPU -1", access: .write(vcpu: -1, offset: O.upstream(0, O.setPerf), value: 1_000_000), invalid: .vcpuOutOfRange),
        .init(label: "executing vCPU Int.max", access: .read(vcpu: .max, offset: O.doorbell(0)), invalid: .vcpuOutOfRange),
        .init(label: "window of vCPU 8", access: .read(vcpu: 0, offset: O.upstream(8, O.perftblLen)), invalid: .beyondLastVCPU),
        .init(label: "window of vCPU 1023", access: .write(vcpu: 0, offset: O.upstream(1023, O.setPerf), value: 1), invalid: .beyondLastVCPU),
        .init(label: "util-hint window of vCPU 8", access: .write(vcpu: 0, offset: O.utilHint(8, O.utilHintReg), value: 1), invalid: .beyondLastVCPU),
        .init(label: "doorbell 8", access: .write(vcpu: 0, offset: O.doorbell(8), value: 1), invalid: .beyondLastVCPU),
        .init(label: "last doorbell slot", access: .write(vcpu: 0, offset: O.doorbell(1023), value: 1), invalid: .beyondLastVCPU),
        // Table index
        .init(label: "perftbl_sel 11 of 11", setup: [.write(vcpu: 0, offset: O.upstream(0, O.perftblSel), value: 11)],
              access: .read(vcpu: 0, offset: O.upstream(0, O.perftblRd)), invalid: .tableIndexOutOfRange),
        .init(label: "perftbl_sel 0xffffffff", setup: [.write(vcpu: 0, offset: O.upstream(0, O.perftblSel), value: 0xffff_ffff)],
              access: .read(vcpu: 0, offset: O.upstream(0, O.perftblRd)), invalid: .tableIndexOutOfRange),
        .init(label: "max-only perftbl_sel 1", mode: .maxOnly, setup: [.write(vcpu: 2, offset: O.upstream(2, O.perftblSel), value: 1)],
              access: .read(vcpu: 2, offset: O.upstream(2, O.perftblRd)), invalid: .tableIndexOutOfRange),
        .init(label: "freqtbl_sel 11 of 11", setup: [.write(vcpu: 0, offset: O.utilHint(0, O.freqtblSel), value: 11)],
              access: .read(vcpu: 0, offset: O.utilHint(0, O.freqtblRd)), invalid: .tableIndexOutOfRange),
        .init(label: "max-only freqtbl_sel 11 (util-hint always has the full table)", mode: .maxOnly,
              setup: [.write(vcpu: 0, offset: O.utilHint(0, O.freqtblSel), value: 11)],
              access: .read(vcpu: 0, offset: O.utilHint(0, O.freqtblRd)), invalid: .tableIndexOutOfRange),
        // set_perf values
        .init(label: "set_perf 0", access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), value: 0), invalid: .performanceZero),
        .init(label: "set_perf 2^32 (low word 0)", access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), value: 1 << 32), invalid: .performanceZero),
        .init(label: "max-only set_perf 0", mode: .maxOnly, access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), value: 0), invalid: .performanceZero),
        .init(label: "set_perf max+1", access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), value: UInt64(littleMax) + 1),
              invalid: .performanceAboveMax, request: GuestRequest(vcpu: 0, performanceKHz: littleMax, source: .upstreamRegister)),
        .init(label: "set_perf 0xffffffff", access: .write(vcpu: 3, offset: O.upstream(0, O.setPerf), value: 0xffff_ffff),
              invalid: .performanceAboveMax, request: GuestRequest(vcpu: 0, performanceKHz: littleMax, source: .upstreamRegister)),
        .init(label: "set_perf all ones 64-bit", access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), value: .max),
              invalid: .performanceAboveMax, request: GuestRequest(vcpu: 0, performanceKHz: littleMax, source: .upstreamRegister)),
        .init(label: "max-only set_perf max+1", mode: .maxOnly, access: .write(vcpu: 0, offset: O.upstream(0, O.setPerf), value: UInt64(littleMax) + 1),
              invalid: .performanceAboveMax, request: GuestRequest(vcpu: 0, performanceKHz: littleMax, source: .upstreamRegister)),
        // util_hint values
        .init(label: "util 1025", access: .write(vcpu: 0, offset: O.utilHint(5, O.utilHintReg), value: 1025),
              invalid: .utilizationAboveMax, request: GuestRequest(vcpu: 5, utilization: 1024, source: .utilHintRegister)),
        .init(label: "util 0xffffffff", access: .write(vcpu: 0, offset: O.utilHint(0, O.utilHintReg), value: 0xffff_ffff),
              invalid: .utilizationAboveMax, request: GuestRequest(vcpu: 0, utilization: 1024, source: .utilHintRegister)),
        // Direction
        .init(label: "write cur_perf", access: .write(vcpu: 0, offset: O.upstream(0, O.curPerf), value: 1), invalid: .writeToReadOnly),
        .init(label: "write perftbl_len", access: .write(vcpu: 0, offset: O.upstream(0, O.perftblLen), value: 0), invalid: .writeToReadOnly),
        .init(label: "write perftbl_rd", access: .write(vcpu: 0, offset: O.upstream(0, O.perftblRd), value: 5), invalid: .writeToReadOnly),
        .init(label: "write perf_domain", access: .write(vcpu: 0, offset: O.upstream(0, O.perfDomain), value: 9), invalid: .writeToReadOnly),
        .init(label: "write cur_freq", access: .write(vcpu: 0, offset: O.utilHint(0, O.curFreq), value: 1), invalid: .writeToReadOnly),
        .init(label: "write freqtbl_len", access: .write(vcpu: 0, offset: O.utilHint(0, O.freqtblLen), value: 1), invalid: .writeToReadOnly),
        .init(label: "write freqtbl_rd", access: .write(vcpu: 0, offset: O.utilHint(0, O.freqtblRd), value: 1), invalid: .writeToReadOnly),
        .init(label: "write capacity", access: .write(vcpu: 0, offset: O.utilHint(0, O.capacity), value: 1), invalid: .writeToReadOnly),
        .init(label: "write util_cap", access: .write(vcpu: 0, offset: O.utilHint(0, O.utilCap), value: 1024), invalid: .writeToReadOnly),
        .init(label: "write applied_util", access: .write(vcpu: 0, offset: O.utilHint(0, O.appliedUtil), value: 1), invalid: .writeToReadOnly),
        .init(label: "read set_perf", access: .read(vcpu: 0, offset: O.upstream(0, O.setPerf)), invalid: .readOfWriteOnly),
        .init(label: "read perftbl_sel", setup: [.write(vcpu: 0, offset: O.upstream(0, O.perftblSel), value: 3)],
              access: .read(vcpu: 0, offset: O.upstream(0, O.perftblSel)), invalid: .readOfWriteOnly),
        .init(label: "read util_hint", access: .read(vcpu: 0, offset: O.utilHint(0, O.utilHintReg)), invalid: .readOfWriteOnly),
        .init(label: "read freqtbl_sel", access: .read(vcpu: 0, offset: O.utilHint(0, O.freqtblSel)), invalid: .readOfWriteOnly),
        .init(label: "read doorbell", access: .read(vcpu: 0, offset: O.doorbell(2)), invalid: .readOfWriteOnly),
        .init(label: "read doorbell width 8", access: .read(vcpu: 0, offset: O.doorbell(2), width: 8), invalid: .readOfWriteOnly),
    ]

    @Test(arguments: cases)
    func answerAndCounter(_ c: InvalidCase) throws {
        var device = DeviceModel(vm: try SampleTopologies.phone(tableMode: c.mode).model())
        for access in c.setup { #expect(device.access(access).invalid == nil, "setup must be valid") }
        let mirrorBefore = Self.mirror(device)
        let result = device.access(c.access)
        #expect(result.invalid == c.invalid)
        #expect(result.value == c.value)
        #expect(result.request == c.request)
        #expect(result.kick == nil && result.sharedPageOffset == nil && result.mirrorChanged == nil)
        #expect(device.counters[c.invalid] == 1)
        #expect(device.counters.invalidTotal == 1)
        #expect(device.counters.accesses == UInt64(c.setup.count + 1))
        #expect(device.counters.invalid(vcpu: c.access.vcpu) == ((0..<8).contains(c.access.vcpu) ? 1 : 0))
        #expect(device.counters.requests == (c.request == nil ? 0 : 1))
        #expect(Self.mirror(device) == mirrorBefore, "a bad access changes no register anyone can read")
    }

    /// Every kind of the enum is exercised by some case (the shared page's
    /// unknown-flags kind is exercised in the shared page tests).
    @Test func everyKindIsCovered() {
        let covered = Set(Self.cases.map(\.invalid)).union([.unknownFlags])
        #expect(covered == Set(InvalidAccess.allCases))
    }

    /// Every readable register of every window (upstream and util-hint), for "nothing changed" checks.
    static func mirror(_ device: DeviceModel) -> [UInt32] {
        (0..<device.vcpuCount).flatMap { vcpu in
            UpstreamABI.Register.allCases.map { device.mirrorValue(vcpu: vcpu, register: $0) }
                + UtilHintABI.Register.allCases.map { device.utilHintValue(vcpu: vcpu, register: $0) }
        }
    }
}
