import Testing
@testable import VCPUFreqCore

/// One vCPU of a sample VM and its whole frequency table with the expected
/// utilization of every entry: (perf kHz, util, util × 0.8).
///
/// Expected values were computed by hand from the formula, outside the code
/// under test, in exact rational arithmetic: util = round(capacity × perf /
/// max), util0.8 = round(capacity × perf × 0.8 / max) (one rounding, halves
/// up). Spot checks: phone little 300 000 kHz → 160 × 300/1803 = 26.62 → 27,
/// × 0.8 = 21.30 → 21; server 1 500 000 kHz → 1024 × 1.5/3 = 512, × 0.8 =
/// 409.6 → 410; laptop little 774 000 kHz → 382 × 774/2000 = 147.83 → 148,
/// × 0.8 = 118.27 → 118.
struct MappingTable: Sendable, CustomTestStringConvertible {
    var name: String
    var topology: @Sendable () -> Topology
    var vcpu: Int
    var rows: [(performanceKHz: UInt32, utilization: UInt16, compensated: UInt16)]
    var testDescription: String { name }
}

private let mappingTables: [MappingTable] = [
    MappingTable(name: "phone little (160)", topology: { SampleTopologies.phone() }, vcpu: 0, rows: [
        (300000, 27, 21), (574000, 51, 41), (738000, 65, 52), (930000, 83, 66),
        (1098000, 97, 78), (1197000, 106, 85), (1328000, 118, 94), (1401000, 124, 99),
        (1598000, 142, 113), (1704000, 151, 121), (1803000, 160, 128),
    ]),
    MappingTable(name: "phone mid (498)", topology: { SampleTopologies.phone() }, vcpu: 5, rows: [
        (400000, 88, 71), (553000, 122, 98), (696000, 154, 123), (799000, 177, 141),
        (910000, 201, 161), (1024000, 226, 181), (1197000, 265, 212), (1328000, 294, 235),
        (1491000, 330, 264), (1663000, 368, 294), (1836000, 406, 325), (1999000, 442, 353),
        (2130000, 471, 377), (2253000, 498, 398),
    ]),
    MappingTable(name: "phone big (1024)", topology: { SampleTopologies.phone() }, vcpu: 7, rows: [
        (500000, 183, 146), (851000, 311, 249), (984000, 360, 288), (1106000, 404, 323),
        (1277000, 467, 373), (1426000, 521, 417), (1582000, 578, 463), (1745000, 638, 510),
        (1826000, 667, 534), (2048000, 748, 599), (2188000, 800, 640), (2252000, 823, 658),
        (2401000, 877, 702), (2507000, 916, 733), (2630000, 961, 769), (2704000, 988, 791),
        (2802000, 1024, 819),
    ]),
    MappingTable(name: "laptop little (382)", topology: { SampleTopologies.laptop() }, vcpu: 2, rows: [
        (500000, 96, 76), (774000, 148, 118), (1000000, 191, 153), (1200000, 229, 183),
        (1500000, 287, 229), (1800000, 344, 275), (2000000, 382, 306),
    ]),
    MappingTable(name: "laptop big (1024)", topology: { SampleTopologies.laptop() }, vcpu: 4, rows: [
        (500000, 213, 171), (800000, 341, 273), (1100000, 469, 375), (1400000, 597, 478),
        (1700000, 725, 580), (2000000, 853, 683), (2200000, 939, 751), (2400000, 1024, 819),
    ]),
    MappingTable(name: "server (1024)", topology: { SampleTopologies.server() }, vcpu: 15, rows: [
        (1200000, 410, 328), (1300000, 444, 355), (1400000, 478, 382), (1500000, 512, 410),
        (1600000, 546, 437), (1700000, 580, 464), (1800000, 614, 492), (1900000, 649, 519),
        (2000000, 683, 546), (2100000, 717, 573), (2200000, 751, 601), (2300000, 785, 628),
        (2400000, 819, 655), (2500000, 853, 683), (2600000, 887, 710), (2700000, 922, 737),
        (2800000, 956, 765), (2900000, 990, 792), (3000000, 1024, 819),
    ]),
]

@Suite struct PolicyMappingTests {
    @Test(arguments: mappingTables)
    func everyTableEntryMapsToTheHandComputedUtilization(table: MappingTable) throws {
        let vcpu = try table.topology().model().vcpus[table.vcpu]
        #expect(table.rows.map(\.performanceKHz) == vcpu.frequenciesKHz, "the table covers every entry")
        for row in table.rows {
            #expect(PolicyEngine.utilization(forPerformanceKHz: row.performanceKHz, of: vcpu, compensateHeadroom: false) == row.utilization, "\(row.performanceKHz) kHz")
            #expect(PolicyEngine.utilization(forPerformanceKHz: row.performanceKHz, of: vcpu, compensateHeadroom: true) == row.compensated, "\(row.performanceKHz) kHz × 0.8")
        }
    }

    /// The same tables through the engine: a request for each entry on the
    /// vCPU gives its whole domain that util_min, headroom from the VM profile.
    @Test(arguments: mappingTables, [HeadroomCompensation.none, .schedutil])
    func engineAppliesTheMappedUtilizationToTheDomain(table: MappingTable, headroom: HeadroomCompensation) throws {
        var engine = try PolicyFixtures.engine(table.topology(), headroom: headroom)
        let domain = engine.vm.domains.first { $0.contains(table.vcpu) }!
        var now: UInt64 = 0
        for row in table.rows {
            now += 1_000_000
            engine.perf(table.vcpu, row.performanceKHz, at: now)
            let expected = headroom == .schedutil ? row.compensated : row.utilization
            for member in domain { #expect(engine.appliedHint(vcpu: member).utilMin == expected) }
        }
    }

    /// Hand-made vCPUs for the rounding and robustness edges.
    static func vcpu(capacity: Int, table: [UInt32]) -> VCPUModel {
        VCPUModel(
            index: 0, cluster: 0, capacity: capacity, frequenciesKHz: table, performanceDomain: 0,
            hostCPUs: CPUList([0]), hostMaxFrequencyKHz: table.last ?? 0, hostCapacity: capacity)
    }

    @Test(arguments: [
        // capacity, table, perf, compensate, expected
        (1, [2] as [UInt32], 1 as UInt32, false, 1 as UInt16),  // 0.5 rounds up
        (3, [4], 1, false, 1),  // 0.75 → 1
        (1, [4], 1, false, 0),  // 0.25 → 0
        (5, [8], 1, true, 1),  // 5 / 8 × 0.8 = 0.5 exactly → 1
        (10, [16], 3, true, 2),  // 30 / 16 × 0.8 = 1.5 exactly → 2
        (33, [10], 1, true, 3),  // 3.3 × 0.8 = 2.64 → 3; rounding twice would give 3 × 0.8 = 2.4 → 2
        (37, [10], 1, true, 3),  // 3.7 × 0.8 = 2.96 → 3; rounding twice would give 4 × 0.8 = 3.2 → 3
        (100, [300], 2, true, 1),  // 0.667 × 0.8 = 0.533 → 1
        (160, [1000, 2000], 4_000, false, 160),  // above the table: counts as its maximum
        (1024, [UInt32.max], UInt32.max, true, 819),  // no overflow at the top of UInt32
        (2000, [100], 100, false, 1024),  // a capacity beyond 1024 (unchecked model) stays on scale
        (-5, [100], 100, false, 0),  // a negative capacity (unchecked model) maps to 0
        (1024, [], 100, false, 0),  // no table: nothing to scale against
    ] as [(Int, [UInt32], UInt32, Bool, UInt16)])
    func roundingAndBounds(capacity: Int, table: [UInt32], performanceKHz: UInt32, compensate: Bool, expected: UInt16) {
        let vcpu = Self.vcpu(capacity: capacity, table: table)
        #expect(PolicyEngine.utilization(forPerformanceKHz: performanceKHz, of: vcpu, compensateHeadroom: compensate) == expected)
    }

    /// Util hints are taken as they are, within 0...1024; with a performance
    /// level in the same request the larger utilization wins.
    @Test(arguments: [
        // perf kHz, util, expected (phone big vCPU: 1024 × perf / 2 802 000)
        (nil, 0, 0),
        (nil, 1, 1),
        (nil, 700, 700),
        (nil, 1024, 1024),
        (nil, 5000, 1024),
        (1_401_000, nil, 512),  // exactly half of the maximum
        (1_401_000, 300, 512),  // perf larger
        (1_401_000, 600, 600),  // util larger
        (500_000, 183, 183),  // equal (500 000 kHz → 182.7 → 183)
        (nil, nil, nil),  // flags only: no utilization
    ] as [(UInt32?, UInt32?, UInt16?)])
    func utilHintsAndTheBothPresentRule(performanceKHz: UInt32?, utilization: UInt32?, expected: UInt16?) throws {
        let vcpu = try SampleTopologies.phone().model().vcpus[6]
        let request = GuestRequest(vcpu: 6, performanceKHz: performanceKHz, utilization: utilization, source: .sharedPage)
        #expect(PolicyEngine.utilization(for: request, of: vcpu, compensateHeadroom: false) == expected)
    }

    /// With compensation the util hint is still taken directly: only a
    /// performance level goes through the governor's headroom.
    @Test func utilHintIsNotCompensated() throws {
        let vcpu = try SampleTopologies.phone().model().vcpus[6]
        let request = GuestRequest(vcpu: 6, performanceKHz: 2_802_000, utilization: 900, source: .sharedPage)
        #expect(PolicyEngine.utilization(for: request, of: vcpu, compensateHeadroom: true) == 900)  // max(819, 900)
        let hintOnly = GuestRequest(vcpu: 6, utilization: 512, source: .utilHintRegister)
        #expect(PolicyEngine.utilization(for: hintOnly, of: vcpu, compensateHeadroom: true) == 512)
    }
}
