import Foundation
import Testing
import VCPUFreqLinux
import VCPUFreqTestSupport

@testable import VCPUFreqBench

/// `vcpufreq bench daemon --quick` end to end: the real binary starts the
/// real daemon, loads it on every path and writes the report. Checks the
/// report's structure and that the numbers are positive and consistent —
/// never how fast anything was (no timed assertion).
@Suite(.serialized) struct DaemonBenchSmokeTests {
    /// The build directory of this test run (where SwiftPM put `vcpufreq`
    /// and the counter library), else the package's debug build.
    static var buildDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let here = URL(fileURLWithPath: exe).deletingLastPathComponent().path
        if FileManager.default.isExecutableFile(atPath: here + "/vcpufreq") { return here }
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/VCPUFreqBenchTests/DaemonBenchSmokeTests.swift
        return parts.joined(separator: "/") + "/.build/debug"
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var report: DaemonBenchReport?
        var markdown: String?
    }

    /// One quick run shared by the tests (each takes seconds).
    static let quickRun: Result<Run, any Error> = Result { try runQuick() }

    static func runQuick() throws -> Run {
        let binary = buildDirectory + "/vcpufreq"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "\(binary) is missing: run `swift build` first")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["bench", "daemon", "--quick", "--out", out]
        let run = try ProgramOutput.of(process)
        let json = FileManager.default.contents(atPath: out + "/daemon.json")
        return Run(
            status: run.status, stdout: run.standardOutput,
            stderr: run.standardError, report: try json.map(DaemonBenchReport.decode),
            markdown: try? String(contentsOfFile: out + "/daemon.md", encoding: .utf8))
    }

    @Test func quickRunReportsEveryShapeAndPath() throws {
        let run = try Self.quickRun.get()
        #expect(run.status == 0, "stderr:\n\(run.stderr)")
        let report = try #require(run.report, "no daemon.json; stderr:\n\(run.stderr)")
        let markdown = try #require(run.markdown)
        #expect(run.stdout == markdown, "the table printed is the one written")
        #expect(run.stderr.contains("starting the daemon"), "progress goes to stderr")

        #expect(report.quick)
        #expect(!report.machine.cpuModel.isEmpty && report.machine.onlineCPUs >= 1 && !report.machine.kernel.isEmpty)
        #expect(report.shapes.map { VMShape(vms: $0.vms, vcpusPerVM: $0.vcpusPerVM) } == DaemonBenchOptions.quickShapes)
        let combinations: Set<String> = [
            "register/clamp", "shared-kick/clamp", "shared-kick/clamp+slice", "shared-poll/clamp", "shared-poll/clamp+slice",
        ]
        for shape in DaemonBenchOptions.quickShapes {
            let rows = report.rows.filter { $0.vms == shape.vms && $0.vcpusPerVM == shape.vcpusPerVM }
            #expect(Set(rows.map { "\($0.path.rawValue)/\($0.variant.rawValue)" }) == combinations, "\(shape)")
            #expect(rows.count == combinations.count)
        }
        // A table line per row, after the header and its rule.
        let tableLines = markdown.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| VMs") }
        #expect(tableLines.count >= report.rows.count)

        for row in report.rows {
            let name = "\(row.vms)x\(row.vcpusPerVM) \(row.path.rawValue) \(row.variant.rawValue)"
            #expect(row.requestsPerSecond > 0, "\(name)")
            #expect(row.latency.samples == UInt64(report.settings.latencySamples), "\(name)")
            #expect(row.latency.p50Microseconds > 0, "\(name)")
            #expect(row.latency.p50Microseconds <= row.latency.p99Microseconds, "\(name)")
            #expect(row.latency.p99Microseconds <= row.latency.maxMicroseconds, "\(name)")
            #expect((row.loadedLatency?.samples ?? 0) > 0, "\(name)")
            #expect(row.generatorIssued > 0, "\(name)")
            // The daemon saw every request the generator made, once.
            #expect(row.daemonCounted?.requests == row.generatorIssued, "\(name)")
            // Doorbells: rung once per request when the host wants kicks
            // (kick_mode always), never when it polls or on the register path.
            switch row.path {
            case .sharedPageKick: #expect(abs(row.doorbellWritesPerRequest - 1) < 0.01, "\(name)")
            case .registerForwarding, .sharedPagePolled: #expect(row.doorbellWritesPerRequest == 0, "\(name)")
            case .scmiLevelSet, .scmiLevelSetBatched, .scmiLevelGet: Issue.record("\(name): bench daemon runs no SCMI path")
            }
            if row.path == .registerForwarding && row.variant == .clamp {
                #expect(row.ratios?.requestsPerSecond == 1, "\(name) is its own baseline")
            } else {
                #expect((row.ratios?.requestsPerSecond ?? 0) > 0, "\(name)")
            }
        }
    }

    /// With the counter library built beside the binary, allocations are
    /// counted in the daemon (and the count is live: start-up allocates).
    @Test(.disabled(if: underSanitizer, Comment(rawValue: allocationCountingNeedsPlainMalloc)))
    func allocationsAreCountedInTheDaemon() throws {
        let library = Self.buildDirectory + "/" + MallocCounterFile.libraryFileName
        try #require(FileManager.default.fileExists(atPath: library), "\(library) not built")
        let run = try Self.quickRun.get()
        let report = try #require(run.report, "stderr:\n\(run.stderr)")
        #expect(report.daemon.allocationCounting.hasPrefix("LD_PRELOAD"), "\(report.daemon.allocationCounting)")
        #expect((report.daemon.allocationsBeforeMeasuring ?? 0) > 0)
        for row in report.rows {
            #expect(row.allocationsPerRequest != nil)
            #expect(row.allocations.map { $0.allocations <= $0.malloc + $0.calloc + $0.realloc + $0.memalign } == true)
        }
        if report.daemon.actuators.contains("latency=slice") {
            #expect(report.daemon.observedSliceNanoseconds == UInt64(report.settings.latencySliceMicroseconds) * 1000)
        }
    }

    /// With the loopback interface down (a fresh network namespace, as on a
    /// host or guest whose `lo` was never brought up) the run still ends:
    /// Foundation's `Process` cannot watch a child there (`Could not create
    /// wakeup socket pair for CFSocket`), and the benchmark used to hang
    /// after its last shape, waiting for a child it had already reaped.
    @Test func finishesWithTheLoopbackInterfaceDown() throws {
        guard getuid() == 0 else {
            print("skipped: `unshare -n` (a network namespace without lo up) needs root")
            return
        }
        let binary = Self.buildDirectory + "/vcpufreq"
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-bench-nolo-\(UUID().uuidString)").path
        let log = out + ".log"
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: log)
        }
        let child = try ChildProcess(
            ["/usr/bin/unshare", "-n", binary, "bench", "daemon", "--quick", "--no-placement", "--shapes", "1x2", "--out", out],
            outputPath: log)
        let ended = child.wait(timeout: .seconds(90))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if ended == nil { child.stop(grace: .seconds(2)) }
        #expect(ended == .exited(0), "the benchmark did not finish in a network namespace (\(ended.map(String.init(describing:)) ?? "hung")):\n\(output.suffix(2000))")
        #expect(FileManager.default.fileExists(atPath: out + "/daemon.json"))
    }

    /// Runs the binary with `arguments`; returns status and both outputs.
    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: buildDirectory + "/vcpufreq")
        process.arguments = arguments
        let run = try ProgramOutput.of(process)
        return (run.status, run.standardOutput, run.standardError)
    }

    @Test func benchGroupListsTheDaemonBenchmark() throws {
        let help = try Self.run(["bench", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("daemon"))
        let daemonHelp = try Self.run(["bench", "daemon", "--help"])
        #expect(daemonHelp.status == 0)
        for option in ["--quick", "--out", "--shapes", "--latency-samples", "--seconds", "--poll-interval-us", "--no-placement"] {
            #expect(daemonHelp.stdout.contains(option), "\(option) missing from the help")
        }
    }

    @Test(arguments: [
        (["--shapes", "65x1"], "at most 64 VMs"), (["--shapes", "2x1000"], "at most 1024 vCPUs"),
        (["--shapes", "8"], "is not VMSxVCPUS"), (["--poll-interval-us", "10"], "poll interval"),
    ])
    func shapesBeyondTheDaemonsLimitsFailBeforeStarting(arguments: [String], message: String) throws {
        let result = try Self.run(["bench", "daemon"] + arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stderr.contains("starting the daemon"))
    }
}
