import Foundation
import Testing
import VCPUFreqConfig
import VCPUFreqCore
@testable import VCPUFreqDoorbellBench
import VCPUFreqKVM
import VCPUFreqVMM

/// The benchmark's arithmetic and rendering, without KVM: expectations are
/// worked out by hand in the comments, not taken from the code under test.
@Suite struct PureTests {
    // MARK: Statistics

    @Test func percentilesAreNearestRankSamples() throws {
        let hundred = try #require(LatencySummary((1...100).reversed().map(Double.init)))
        #expect(hundred.count == 100)
        #expect(hundred.min == 1 && hundred.max == 100)
        #expect(hundred.mean == 50.5)
        // rank ⌈p × n⌉: 50th, 90th, 99th smallest.
        #expect(hundred.p50 == 50 && hundred.p90 == 90 && hundred.p99 == 99)
        let three = try #require(LatencySummary([5, 1, 3]))
        // ⌈0.5 × 3⌉ = 2 → 3; ⌈0.99 × 3⌉ = 3 → 5.
        #expect(three.p50 == 3 && three.p99 == 5)
        #expect(LatencySummary([]) == nil)
    }

    /// 200 quantiles of 1...400: the i-th is the (2i)-th smallest, 2i.
    @Test func quantilesAreEveryHalfPercentByNearestRank() {
        let quantiles = LatencySummary.quantiles((1...400).map(Double.init).shuffled())
        #expect(quantiles == (1...200).map { Double(2 * $0) })
        #expect(LatencySummary.quantiles([]).isEmpty)
        #expect(LatencySummary.quantiles([7]) == Array(repeating: 7, count: 200))
    }

    // MARK: Topology and expected hints

    /// util_min = 1024 × perf / 3 GHz, rounded: 3 GHz → 1024, 1 GHz →
    /// 341.33 → 341, 2 GHz → 682.67 → 683; above the table it is the maximum.
    @Test(arguments: [
        (3_000_000, 1024), (1_000_000, 341), (2_000_000, 683), (4_000_000, 1024), (0, 0), (1_500_000, 512),
    ] as [(UInt32, UInt32)])
    func utilMinIsTheDesignFormulaWithoutHeadroom(kHz: UInt32, expected: UInt32) {
        #expect(BenchTopology.utilMin(forKHz: kHz) == expected)
    }

    @Test func theDaemonsTopologyHasNoDeadBandNoRateLimitAndTheTwoKickModes() throws {
        let (decoded, diagnostics) = TopologyFile.decode(BenchTopology.text(cpuCount: 2, pollIntervalMicroseconds: 750))
        let topology = try #require(decoded, "\(diagnostics)")
        #expect(topology.host.clusters.map(\.frequenciesKHz) == [[1_000_000, 2_000_000, 3_000_000]])
        let kicked = try #require(topology.profile(named: BenchTopology.kickedProfile))
        let polled = try #require(topology.profile(named: BenchTopology.polledProfile))
        for profile in [kicked, polled] {
            #expect(profile.vcpuCount == 1 && !profile.pin)
            #expect(profile.policy.hysteresis == 0 && profile.policy.minimumIntervalMicroseconds == 0)
        }
        #expect(kicked.policy.kickMode == .always)
        #expect(polled.policy.kickMode == .never && polled.policy.pollIntervalMicroseconds == 750)
        // The daemon's own formula agrees with the one the guest waits for.
        let model = try topology.model(forVM: BenchTopology.kickedProfile)
        for kHz in [BenchTopology.requestA, BenchTopology.requestB, BenchTopology.primer] {
            let daemon = PolicyEngine.utilization(
                forPerformanceKHz: kHz, of: model.vcpus[0], compensateHeadroom: model.compensateHeadroom)
            #expect(UInt32(daemon) == BenchTopology.utilMin(forKHz: kHz))
        }
        // A primer the loop never sends, and requests that differ.
        #expect(Set([BenchTopology.requestA, BenchTopology.requestB, BenchTopology.primer]).count == 3)
        // Path 5: kick mode scheduler, polled once a second, asking the same utilizations.
        let scheduler = try #require(topology.profile(named: BenchTopology.schedulerProfile))
        #expect(scheduler.policy.kickMode == .scheduler && scheduler.policy.pollIntervalMicroseconds == 1_000_000)
        #expect(scheduler.policy.hysteresis == 0 && !scheduler.pin && scheduler.utilCap == 1024)
        #expect(BenchTopology.utilizationA == 1024 && BenchTopology.utilizationB == 341)
    }

    /// Path 5 waits for the BPF programs' `sched_seen` word (docs/abi.md)
    /// to show the utilization: bit 31 (util valid) and bits 16-26, worked
    /// out by hand; the sequence bits are masked off.
    @Test func pathFiveWaitsForTheSeenWordOfItsUtilization() throws {
        let addresses = DeviceAddresses(base: DeviceAddressMap.defaultBase, vcpuCount: 1)
        let block = Rig.bpfMapPageTemplate(addresses: addresses, values: (1024, 341))
        #expect(block.kind == .publish && block.field == SharedPageABI.Slot.utilization)
        #expect(block.watch == DeviceAddressMap.defaultBase + DeviceAddressMap.sharedPageOffset + 64 + 0x38)
        #expect(block.mask == 0x87FF_0000)
        #expect(block.expected.a == 0x8400_0000 && block.expected.b == 0x8155_0000)
        #expect(block.flags.a == SharedPageABI.GuestFlags.utilValid.rawValue && block.flags.b == block.flags.a)
    }

    // MARK: Placements

    @Test func placementsOnOneAndTwoCPUs() throws {
        #expect(Placement.split.cpus(cpuCount: 1) == nil)
        let split = try #require(Placement.split.cpus(cpuCount: 2))
        #expect(split.vcpu == CPUList([0]) && split.daemon == CPUList([1]))
        let shared = try #require(Placement.shared.cpus(cpuCount: 4))
        #expect(shared.vcpu == CPUList([0]) && shared.daemon == CPUList([0]))
        #expect(Placement.splitRealtime.cpus(cpuCount: 1) == nil)
        let fifo = try #require(Placement.sharedRealtime.cpus(cpuCount: 2))
        #expect(fifo.vcpu == CPUList([0]) && fifo.daemon == CPUList([0]))
        #expect(Placement.allCases.filter(\.daemonRealtime) == [.splitRealtime, .sharedRealtime])
        let unpinned = try #require(Placement.unpinned.cpus(cpuCount: 2))
        #expect(unpinned.vcpu == CPUList([0, 1]) && unpinned.daemon == CPUList([0, 1]))
    }

    // MARK: Rendering

    @Test(arguments: [
        (0, "0"), (0.000293, "0.000293"), (0.0153, "0.0153"), (0.41, "0.410"), (7.06, "7.06"), (29.31, "29.3"),
        (153.4, "153"), (1111.6, "1112"), (-3.5, "-3.50"), (1, "1.00"), (10, "10.0"),
    ] as [(Double, String)])
    func numbersKeepThreeSignificantDigitsBelowAHundred(value: Double, text: String) {
        #expect(Report.number(value) == text)
    }

    @Test func theReadmeSectionIsReplacedBetweenItsMarkersOnly() {
        let readme = "# Title\n\nbefore\n\(Report.readmeBegin)\nold table\n\(Report.readmeEnd)\nafter\n"
        let updated = Report.replacingReadmeSection(in: readme, with: "new table\n")
        #expect(updated == "# Title\n\nbefore\n\(Report.readmeBegin)\nnew table\n\(Report.readmeEnd)\nafter\n")
        #expect(Report.replacingReadmeSection(in: "no markers", with: "x") == nil)
        #expect(Report.replacingReadmeSection(in: "\(Report.readmeEnd) \(Report.readmeBegin)", with: "x") == nil)
    }

    @Test func aRunRendersOneRowPerPathAndPlacementAndOneCurvePerPath() throws {
        let results = SyntheticResults.make()
        let table = Report.requestTable(results)
        let rows = table.split(separator: "\n").dropFirst(2)
        #expect(rows.count == results.placements.count * RequestPathKind.allCases.count)
        #expect(rows.first?.hasPrefix("| unpinned | 1 | ") == true)
        let svg = LatencyChart.svg(results)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        let curves = svg.components(separatedBy: "<polyline").count - 1
        #expect(curves == results.placements.count * RequestPathKind.allCases.count)
        // Decade labels on the log axis: the synthetic samples span 10 µs to 990 µs.
        #expect(svg.contains(">10</text>") && svg.contains(">100</text>") && svg.contains(">1000</text>"))
        let markdown = Report.markdown(results)
        #expect(markdown.contains("## Targets") && markdown.contains("doorbell.svg"))
        let section = Report.readmeSection(results)
        // One row per path and per read, after the two header lines.
        let sectionLines = section.split(separator: "\n")
        let pathRows = sectionLines.filter { line in (1...5).contains { line.hasPrefix("| \($0). ") } }
        let readRows = sectionLines.filter { $0.hasPrefix("| cur_perf:") }
        #expect(pathRows.count == RequestPathKind.allCases.count && readRows.count == ReadPathKind.allCases.count)
        // The targets: one row each, one column per placement, the kick's p99 of 49 µs met everywhere.
        let kickRow = try #require(sectionLines.first { $0.hasPrefix("| kick → hint applied p99") })
        #expect(kickRow.components(separatedBy: "met (49.0)").count - 1 == results.placements.count)
    }

    @Test func theCDFKeepsTheExtremesAndAtMostThreeHundredPointsOrSo() throws {
        let small = LatencyChart.cdf([3, 1, 2])
        let values: [Double] = small.map(\.0)
        let fractions: [Double] = small.map(\.1)
        let thirds: [Double] = [1.0 / 3, 2.0 / 3, 1]
        #expect(values == [1, 2, 3])
        #expect(fractions == thirds)
        let many = LatencyChart.cdf((1...10_000).map(Double.init))
        #expect(many.count <= 302)
        #expect(many.first?.0 == 1 && many.last?.0 == 10_000 && many.last?.1 == 1)
    }

    // MARK: Targets

    @Test func targetsFollowTheDesignLimits() {
        var results = SyntheticResults.make()
        // Placement 0: kick cost 0.2 × (met), suppressed 0.06 × (missed), mirror without
        // exits (met), path 5 without exits or kicks (met), p99 49 µs (met).
        let verdicts = Findings.targets(results.placements)
        let unpinned = verdicts.filter { $0.placement == .unpinned }
        #expect(unpinned.map(\.met) == [true, false, true, true, true])
        #expect(unpinned[3].target == "path 5 (BPF-map page): zero exits and kicks")
        // The same p99 with one request never applied is a miss.
        results.placements[0].requests[2].abandoned = 1
        #expect(Findings.targets(results.placements).filter { $0.placement == .unpinned }.map(\.met) == [true, false, true, true, false])
        // One timed kick on path 5 is a miss.
        results.placements[0].requests[4].timedKicksPerRequest = 0.01
        #expect(Findings.targets(results.placements).filter { $0.placement == .unpinned }[3].met == false)
    }

    // MARK: Gaps

    /// 2 ms at 0.25 ns per spin is 8 000 000 spins; 2^23 = 8 388 608 is the
    /// nearest power of two (2^22 is 1.9 × below), so the mask is 2^23 − 1.
    /// At 1 ns: 2 000 000 → 2^21 − 1. At 3 ns: 666 667 → 2^19 = 524 288 is
    /// 1.27 × below, nearer than 2^20: 2^19 − 1.
    @Test(arguments: [(0.25, 8_388_607), (1.0, 2_097_151), (3.0, 524_287)] as [(Double, UInt64)])
    func theGapMaskIsThePowerOfTwoNearestTheMaximum(nanoseconds: Double, mask: UInt64) {
        #expect(DoorbellBench.gapMask(for: .milliseconds(2), spin: SpinCalibration(nanosecondsPerIteration: nanoseconds)) == mask)
    }

    /// The 3′ sentence names what the daemon still calls without a slice
    /// change: read from the actuator summary the daemon reported.
    @Test(arguments: [
        ("clamp=none latency=slice affinity=off", "the daemon makes no system call on this host"),
        ("clamp=bpf-map latency=slice affinity=off; serve --busy-poll-us 2000",
         "the daemon's only system call is the BPF util-hint map update"),
        ("latency=slice clamp=uclamp", "the daemon's only system call is its clamp actuator's (uclamp)"),
        ("unknown", "the daemon calls only its clamp actuator"),
    ])
    func theSyscallLeftWithoutASliceChangeIsTheClampActuators(actuators: String, sentence: String) {
        #expect(Findings.syscallsWithoutSlice(actuators) == sentence)
    }
}
