import Foundation
import Testing
import VCPUFreqBenchSupport
@testable import VCPUFreqWorkloadBench

/// The Markdown table (the published results' shape), the chart and the README section.
@Suite struct ReportTests {
    @Test func theTableIsTestCaseBaselineConfigurationDelta() {
        let results = SyntheticWorkload.results()
        let lines = WorkloadReport.scoreTable(results).split(separator: "\n").map(String.init)
        #expect(lines[0] == "| Test Case | Baseline | crosvm-style | %delta (95 % CI) | vcpufreq-mmio | %delta (95 % CI) "
            + "| vcpufreq-shared-page | %delta (95 % CI) | vcpufreq-sched-ext | %delta (95 % CI) "
            + "| vcpufreq-bpf-map | %delta (95 % CI) |")
        #expect(lines.count == 2 + 6)
        #expect(lines[2].hasPrefix("| Web Browsing | 1000 | 980 | −2.0 % ["))
        #expect(lines[7].hasPrefix("| **Weighted Total** |"))
        #expect(lines[2].contains("| not on this host (no sched_ext) | |"))
        #expect(lines.dropFirst(2).allSatisfy { $0.contains("+6.0 %") }, "the BPF-map page is 6 % better everywhere")
        #expect(lines.dropFirst(2).allSatisfy { $0.contains("+5.0 %") }, "shared page is 5 % better everywhere")
    }

    @Test func deltasPrintWithSignsAndIntervals() {
        #expect(WorkloadReport.delta(3.24, [-1.0, 7.55]) == "+3.2 % [−1.0, +7.6]")
        #expect(WorkloadReport.delta(-12.0, nil) == "−12.0 %")
        #expect(WorkloadReport.delta(nil, nil) == "—")
    }

    @Test func theReportSaysWhenWhereUnderWhatLoadAndWhatWasNotMeasured() {
        let text = WorkloadReport.markdown(SyntheticWorkload.results())
        #expect(text.contains("`uptime` at the start: `12:00:00 up 4:00, load average: 1.00, 1.00, 1.00`"))
        #expect(text.contains("AMD EPYC, 2 CPUs (0-1)"))
        #expect(text.contains("Contention: heavy: 4 CPU hogs per CPU (8 in all)"))
        #expect(text.contains("## Efficiency: score per CPU-second"))
        #expect(text.contains("| baseline | not on this host (no RAPL) | not on this host (no RAPL) | not on this host (no stats) |"))
        #expect(text.contains("| vcpufreq-sched-ext | shared page + adaptive kicks + the sched_ext scheduler | — | not on this host (no sched_ext) |"))
        #expect(text.contains("- a note"))
        #expect(text.contains("vcpufreq-shared-page +5.0 %"), "findings name the separated change")
    }

    @Test func theChartHasABarAndAnIntervalPerTestAndConfigurationThatRan() {
        let results = SyntheticWorkload.results()
        let svg = WorkloadChart.svg(results)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        let bars = svg.components(separatedBy: "<rect").count - 1
        // Background + 6 groups × 5 configurations + a legend square each.
        #expect(bars == 1 + 6 * 5 + 5)
        let whiskers = svg.components(separatedBy: "stroke=\"#000\"").count - 1
        #expect(whiskers == 3 * 6 * 5)
        #expect(svg.contains(">Weighted Total</text>") && !svg.contains("vcpufreq-sched-ext"))
        #expect(WorkloadChart.niceCeiling(1234) == 2000 && WorkloadChart.niceCeiling(0) == 1 && WorkloadChart.niceCeiling(100) == 100)
    }

    @Test func filesAreWrittenAndReadBack() throws {
        let directory = NSTemporaryDirectory() + "workload-report-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try WorkloadResultsFiles.write(SyntheticWorkload.results(), to: directory)
        #expect(written.map { URL(fileURLWithPath: $0).lastPathComponent } == ["workload.md", "workload.json", "workload.svg"])
        let reread = try WorkloadResultsFiles.read(directory + "/workload.json")
        #expect(reread.tests == SyntheticWorkload.results().tests)
        #expect(throws: WorkloadBenchError.self) { try WorkloadResultsFiles.read(directory + "/workload.md") }
    }

    @Test func theReadmeSectionIsReplacedBetweenItsMarkers() {
        let readme = "# x\n\(WorkloadReport.readme.begin)\nold\n\(WorkloadReport.readme.end)\ntail\n"
        let section = WorkloadReport.readmeSection(SyntheticWorkload.results())
        let updated = WorkloadReport.readme.replacing(in: readme, with: section)
        #expect(updated?.contains("| Test Case | Baseline |") == true && updated?.contains("old") == false)
        #expect(updated?.hasSuffix("\(WorkloadReport.readme.end)\ntail\n") == true)
    }
}
