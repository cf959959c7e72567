import Foundation
import Testing
import VCPUFreqTestSupport

@testable import VCPUFreqBench

/// `vcpufreq bench scmi --quick` end to end: the real daemon with a
/// vhost-user SCMI socket, driven by the front-end on every row. Checks the
/// report's structure and consistency — never how fast anything was.
@Suite(.serialized) struct SCMIBenchSmokeTests {
    @Test func quickRunReportsEveryRowConsistently() throws {
        let binary = DaemonBenchSmokeTests.buildDirectory + "/vcpufreq"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "\(binary) is missing: run `swift build` first")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-bench-scmi-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["bench", "scmi", "--quick", "--out", out]
        let run = try ProgramOutput.of(process)
        let printed = run.standardOutput, errors = run.standardError
        #expect(run.status == 0, "stderr:\n\(errors)")
        let data = try #require(FileManager.default.contents(atPath: out + "/scmi.json"), "no scmi.json; stderr:\n\(errors)")
        let report = try JSONDecoder().decode(SCMIBenchReport.self, from: data)
        #expect(printed == (try String(contentsOfFile: out + "/scmi.md", encoding: .utf8)))
        #expect(report.quick && report.vcpus == 8)
        #expect(report.rows.map(\.path) == [.registerForwarding, .scmiLevelSet, .scmiLevelSetBatched, .scmiLevelGet])
        for row in report.rows {
            #expect(row.requestsPerSecond > 0 && row.latency.samples > 0, "\(row.path)")
            #expect(row.latency.p50Microseconds <= row.latency.p99Microseconds, "\(row.path)")
            #expect(row.daemonCPUMicrosecondsPerRequest.map { $0 > 0 } ?? true, "\(row.path)")
            if row.path != .registerForwarding {
                // The device counted at least what the generator completed, and answered none as an error.
                let counted = try #require(row.daemonCounted, "\(row.path)")
                #expect(counted.requests >= row.latency.samples && counted.actuationErrors == 0, "\(row.path): \(counted)")
            }
        }
        #expect(report.rows[0].ratios?.requestsPerSecond == 1)
        #expect(report.rows.allSatisfy { $0.ratios != nil })
    }
}
