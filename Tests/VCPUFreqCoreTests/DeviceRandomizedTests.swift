import Testing
@testable import VCPUFreqCore

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, so a
/// failing run can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Over a million random accesses (edges, random 64-bit offsets, widths
/// 0...16, out-of-range vCPUs, random values) checked against invariants
/// decoded independently from the documented address map.
@Suite struct DeviceRandomizedTests {
    static let accessesPerRun = 1_000_000

    /// What the test itself decodes an offset to (docs/abi.md numbers).
    enum Decoded {
        case upstream(vcpu: Int, register: UInt64)
        case utilHint(vcpu: Int, register: UInt64)
        case doorbell(index: Int, byte: UInt64)
        case other
    }

    static func decode(_ offset: UInt64, vcpuCount: Int) -> Decoded {
        switch offset {
        case 0..<0x40_0000 where offset / 0x1000 < UInt64(vcpuCount):
            return .upstream(vcpu: Int(offset / 0x1000), register: offset % 0x1000)
        case 0x40_0000..<0x80_0000 where (offset - 0x40_0000) / 0x1000 < UInt64(vcpuCount):
            return .utilHint(vcpu: Int((offset - 0x40_0000) / 0x1000), register: offset % 0x1000)
        case 0x88_0000..<0x88_1000 where (offset - 0x88_0000) / 4 < UInt64(vcpuCount):
            return .doorbell(index: Int((offset - 0x88_0000) / 4), byte: offset % 4)
        default:
            return .other
        }
    }

    static let edges: [UInt64] = [
        0, 4, 0x14, 0x18, 0xffc, 0x1000, 0x3f_fffc, 0x40_0000, 0x40_001c, 0x40_0020, 0x7f_fffc, 0x80_0000, 0x80_0ffc,
        0x80_1000, 0x87_fffc, 0x88_0000, 0x88_0ffc, 0x88_1000, 1 << 32, 1 << 63, UInt64.max - 7, UInt64.max - 3, UInt64.max,
    ]

    @Test(arguments: [("phone", TableMode.table, UInt64(0x5eed_0001)), ("laptop", .maxOnly, 0x5eed_0002)])
    func invariantsHoldForRandomAccesses(host: String, mode: TableMode, seed: UInt64) throws {
        let topology = SampleTopologies.all(tableMode: mode).first { $0.host.name == host }!
        let model = try topology.model()
        var device = DeviceModel(vm: model)
        var random = SplitMix64(seed: seed)
        let count = model.vcpuCount
        let tables = model.vcpus.map(\.frequenciesKHz)
        var expectedCurrent = tables.map { $0.last! }
        var flaggedInvalid: UInt64 = 0, requests: UInt64 = 0, failures = 0
        func fail(_ message: @autoclosure () -> String) {
            failures += 1
            if failures <= 10 { Issue.record("seed \(seed): \(message())") }
        }

        for step in 0..<Self.accessesPerRun {
            if step % 997 == 0 {
                let vcpu = random.below(count)
                let kHz = UInt32(truncatingIfNeeded: random.next())
                device.setCurrentPerformance(vcpu: vcpu, kHz: kHz)
                expectedCurrent[vcpu] = kHz
            }
            let executing: Int = random.below(16) < 14 ? random.below(count) : [-1, count, count + 1, .min, .max, Int(truncatingIfNeeded: random.next())][random.below(6)]
            let offset: UInt64
            switch random.below(10) {
            case 0, 1, 2: offset = UInt64(random.below(count + 2)) * 0x1000 + UInt64(random.below(0x24))
            case 3, 4: offset = 0x40_0000 + UInt64(random.below(count + 2)) * 0x1000 + UInt64(random.below(0x24))
            case 5: offset = 0x88_0000 + UInt64(random.below(4 * (count + 2)))
            case 6: offset = 0x80_0000 + UInt64(random.below(0x1100))
            case 7: offset = Self.edges[random.below(Self.edges.count)]
            case 8: offset = UInt64(random.below(0x88_2000))
            default: offset = random.next()
            }
            let width = random.below(4) == 0 ? random.below(17) : 4
            var value: UInt64? = nil
            if random.below(2) == 0 {
                let table = tables[random.below(count)]
                switch random.below(7) {
                case 0: value = 0
                case 1: value = UInt64(table[random.below(table.count)])
                case 2: value = UInt64(table.last!) + UInt64(random.below(3)) &- 1
                case 3: value = 0xffff_ffff
                case 4: value = random.next()
                case 5: value = UInt64(random.below(2048))
                default: value = UInt64(random.below(70))
                }
            }
            let access = GuestAccess(vcpu: executing, offset: offset, width: width, value: value)
            let decoded = Self.decode(offset, vcpuCount: count)
            let wellFormed = (0..<count).contains(executing) && width == 4 && offset % 4 == 0
            var mirrorBefore: UInt32 = 0
            if case .upstream(let vcpu, _) = decoded { mirrorBefore = device.mirrorValue(vcpu: vcpu, register: .perftblRd) }
            var expectedRead: UInt32? = nil
            if case .upstream(let vcpu, let register) = decoded, wellFormed, value == nil,
                let known = UpstreamABI.Register(rawValue: register), known.isReadable
            {
                let entry = device.mirrorValue(vcpu: vcpu, register: known)
                // A refused table read is the one readable register that may
                // be invalid; the mirror shows its 0 as well.
                expectedRead = entry
            }

            let result = device.access(access)

            if result.value > UInt64(UInt32.max) { fail("\(access): value \(result.value) wider than a register") }
            if let expectedRead, result.value != UInt64(expectedRead) { fail("\(access): read \(result.value), mirror \(expectedRead)") }
            if let kind = result.invalid {
                flaggedInvalid += 1
                let corrected = kind == .performanceAboveMax || kind == .utilizationAboveMax
                if result.value != 0 || result.kick != nil || result.sharedPageOffset != nil || result.mirrorChanged != nil
                    || (result.request != nil) != corrected
                {
                    fail("\(access): refused access with effects \(result)")
                }
            }
            if let request = result.request {
                requests += 1
                switch decoded {
                case .upstream(let vcpu, 0x4) where wellFormed && value != nil:
                    let kHz = request.performanceKHz ?? 0
                    if request.vcpu != vcpu || request.source != .upstreamRegister || request.utilization != nil
                        || !(1...tables[vcpu].last!).contains(kHz) || (mode == .table && !tables[vcpu].contains(kHz))
                    {
                        fail("\(access): bad request \(request)")
                    }
                case .utilHint(let vcpu, 0x0) where wellFormed && value != nil:
                    if request.vcpu != vcpu || request.source != .utilHintRegister || request.performanceKHz != nil
                        || (request.utilization ?? 9999) > 1024
                    {
                        fail("\(access): bad request \(request)")
                    }
                default:
                    fail("\(access): request \(request) from an access that cannot make one")
                }
            }
            if let kick = result.kick {
                guard case .doorbell(let index, 0) = decoded, value != nil, index == kick, (0..<count).contains(executing) else {
                    fail("\(access): kick \(kick) from a non-doorbell write"); continue
                }
            }
            if case .upstream(let vcpu, _) = decoded {
                let mirrorAfter = device.mirrorValue(vcpu: vcpu, register: .perftblRd)
                if (result.mirrorChanged == vcpu) != (mirrorAfter != mirrorBefore) { fail("\(access): mirrorChanged \(String(describing: result.mirrorChanged))") }
                if device.currentPerformanceKHz(vcpu: vcpu) != expectedCurrent[vcpu] { fail("\(access): a guest access changed cur_perf") }
            } else if result.mirrorChanged != nil {
                fail("\(access): mirrorChanged outside the upstream windows")
            }
        }

        #expect(failures == 0)
        #expect(device.counters.accesses == UInt64(Self.accessesPerRun))
        #expect(device.counters.invalidTotal == flaggedInvalid)
        #expect(InvalidAccess.allCases.reduce(0) { $0 + device.counters[$1] } == flaggedInvalid)
        #expect(device.counters.requests == requests)
        #expect((0..<count).map { device.currentPerformanceKHz(vcpu: $0) } == expectedCurrent)
        // The run reached every kind the registers can produce (unknownFlags is shared page only).
        for kind in InvalidAccess.allCases where kind != .unknownFlags {
            #expect(device.counters[kind] > 0, "\(kind) never happened: the generator is too narrow")
        }
    }
}
