import Foundation
import Testing

@testable import VCPUFreqBPF

/// `vcpufreq stats`'s command line, and the benchmark report.
@Suite struct CommandTests {
    @Test("stats --help names every option and what the report shows")
    func statsHelp() throws {
        let result = try DaemonProcess.runTool(["stats", "--help"])
        #expect(result.status == 0)
        for text in [
            "--socket <socket>", "--json", "--watch", "--interval-ms <interval-ms>", "(default: 1000)", "run delay",
            "migrations", "KVM exits",
        ] {
            #expect(result.output.contains(text), "\(text) missing from:\n\(result.output)")
        }
    }

    @Test("stats refuses an interval out of range", arguments: ["0", "3600001"])
    func statsInterval(value: String) throws {
        let result = try DaemonProcess.runTool(["stats", "--socket", "/nonexistent", "--interval-ms", value])
        #expect(result.status != 0)
        #expect(result.error.contains("--interval-ms must be within 1...3600000"), "\(result.error)")
    }

    @Test("stats without a daemon names the socket and the failure")
    func statsNoDaemon() throws {
        let result = try DaemonProcess.runTool(["stats", "--socket", "/nonexistent/socket"])
        #expect(result.status != 0)
        #expect(result.error.contains("/nonexistent/socket: connect to /nonexistent/socket"), "\(result.error)")
    }

    @Test("the benchmark report: medians, ratios and extra time per round trip, computed by hand")
    func overheadReport() throws {
        var comparison = ContextSwitchBenchmark.Comparison()
        comparison.detached = [300_000, 100_000, 200_000]  // median 200,000/s: 5,000 ns per round trip
        comparison.attachedUntracked = [190_000, 180_000]  // median 185,000
        comparison.attachedTracked = [170_000, 160_000, 175_000]  // median 170,000: 5,882.35 ns
        comparison.monitorStatus.state = .running
        let report = BPFOverheadReport(
            comparison: comparison, roundTrips: 1000, repetitions: 3, cpu: 0, kernel: "6.18", onlineProcessors: 2,
            build: "release", date: "2026-01-01T00:00:00Z")
        #expect(report.trackedRatio == 0.85)
        #expect(report.untrackedRatio == 0.925)
        let extra = try #require(report.extraNanosecondsPerRoundTrip(report.attachedTracked))
        #expect(abs(extra - (1e9 / 170_000 - 1e9 / 200_000)) < 1e-6)
        let markdown = report.markdown()
        // Paired: 170/300, 160/100, 175/200 = 0.567, 1.6, 0.875: median 0.875. Untracked has a run missing: none.
        #expect(report.pairedRatio(report.attachedTracked) == 0.875)
        #expect(report.pairedRatio(report.attachedUntracked) == nil)
        #expect(markdown.contains("| detached | 200000 | 100000 | 300000 | 3 | 1.000 | 1.000 | 0 |"), "\(markdown)")
        #expect(markdown.contains("| attached, threads untracked | 185000 | 180000 | 190000 | 2 | 0.925 | - | 405 |"))
        #expect(markdown.contains("| attached, threads tracked | 170000 | 160000 | 175000 | 3 | 0.850 | 0.875 | 882 |"))
        #expect(markdown.contains("**0.875**"))
        #expect(markdown.contains("--round-trips 1000 --repetitions 3 --cpu 0"))
        #expect(markdown.contains("Linux 6.18, 2 online CPUs"))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = String(decoding: try encoder.encode(report), as: UTF8.self)
        #expect(json.contains("\"attached_tracked\":[170000,160000,175000]"))
        #expect(json.contains("\"online_processors\":2"))
    }
}
