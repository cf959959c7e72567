import Foundation
import Testing
@testable import VCPUFreqKernelLab

@Suite struct KernelMatrixTests {
    static let report = KernelReport(
        release: "7.3.4+deb13-amd64",
        facets: ["uclamp": .verified, "cgroup_uclamp": .verified, "slice": .absent, "bpf": .failed],
        notes: ["slice": ["no se.slice"], "bpf": ["did not load"]], plan: "clamp=uclamp latency=nice affinity=on", seconds: 12.5)

    @Test func theConsoleLineRoundTripsThroughASerialLog() throws {
        let log = "SeaBIOS\r\n[    1.0] random kernel line\r\n" + Self.report.consoleLine() + "\r\n[   9.0] reboot: Power down\r\n"
        #expect(KernelReport.parse(consoleLog: log) == Self.report)
        #expect(KernelReport.parse(consoleLog: "no report here\n") == nil)
        #expect(KernelReport.parse(consoleLog: KernelReport.marker + "{truncated\n") == nil)
    }

    @Test func theJSONHasTheIssuesShape() throws {
        let matrix = KernelMatrix(kernels: [Self.report])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(matrix.json().utf8)) as? [String: Any])
        let kernels = try #require(object["kernels"] as? [[String: Any]])
        #expect(kernels.first?["release"] as? String == "7.3.4+deb13-amd64")
        let facets = try #require(kernels.first?["facets"] as? [String: String])
        #expect(facets["uclamp"] == "verified" && facets["slice"] == "absent" && facets["bpf"] == "failed")
        #expect(try JSONDecoder().decode(KernelMatrix.self, from: Data(matrix.json().utf8)) == matrix)
    }

    @Test func missingFacetsAreNotRunAndFailuresAreListed() {
        let text = KernelMatrix(kernels: [Self.report]).text()
        let lines = text.split(separator: "\n")
        #expect(lines[0].split(separator: " ", omittingEmptySubsequences: true) == ["kernel"] + KernelFacets.names.map { Substring($0) })
        #expect(lines[1].hasPrefix("7.3.4+deb13-amd64"))
        #expect(lines[1].contains("not_run"), "nice, affinity, restore, sched_ext were not reported")
        #expect(text.contains("7.3.4+deb13-amd64 bpf FAILED: did not load"))
        #expect(KernelMatrix(kernels: [Self.report]).kernels[0].anyFailed)
    }

    @Test func theMarkdownReplacesOnlyTheMarkedPart() throws {
        let document = "# Kernels\n\nintro\n\n\(KernelMatrix.beginMarker)\nold table\n\(KernelMatrix.endMarker)\n\n## After\n"
        let updated = try #require(KernelMatrix(kernels: [Self.report]).replacingMatrix(in: document))
        #expect(updated.hasPrefix("# Kernels\n\nintro\n\n\(KernelMatrix.beginMarker)\n| kernel | plan |"))
        #expect(updated.hasSuffix("\(KernelMatrix.endMarker)\n\n## After\n"))
        #expect(!updated.contains("old table"))
        #expect(updated.contains("| 7.3.4+deb13-amd64 | `clamp=uclamp latency=nice affinity=on` | verified | verified | absent | not_run |"))
        #expect(updated.contains("- slice (absent): no se.slice"))
        #expect(KernelMatrix(kernels: []).replacingMatrix(in: "no markers") == nil)
    }

    @Test func aGuestThatSaidNothingFailsEveryFacet() {
        let report = KernelReport.failedRun(release: "6.1", reason: "timed out")
        #expect(Set(report.facets.keys) == Set(KernelFacets.names))
        #expect(report.facets.values.allSatisfy { $0 == .failed })
        #expect(report.notes["uclamp"] == ["timed out"])
    }

    @Test func sched_extHasAColumnBeforeItHasACheck() {
        #expect(KernelFacets.names.contains("sched_ext"))
        #expect(Set(KernelFacets.names).count == KernelFacets.names.count)
        #expect(KernelFacets.all.allSatisfy { KernelFacets.names.contains($0.name) })
    }

    @Test func buildOptionsComeFromTheConfigText() {
        let config = KernelConfig.parse("# CONFIG_UCLAMP_TASK is not set\nCONFIG_SCHED_CLASS_EXT=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_UCLAMP_TASK_GROUPX=y\n")
        #expect(config["SCHED_CLASS_EXT"] == "y")
        #expect(config["UCLAMP_TASK"] == "not set")
        #expect(config["UCLAMP_TASK_GROUP"] == "not set", "a longer name is another option")
        #expect(Set(config.keys) == Set(KernelConfig.options))
        var report = Self.report
        report.config = config
        #expect(KernelMatrix(kernels: [report]).markdown().contains("| 7.3.4+deb13-amd64 | not set | not set | not set | y | y | not set |"))
    }
}
