import Foundation
import Testing
@testable import VCPUFreqWorkloadBench

/// The command line, run as a child process; and command mode A/B-testing
/// a shell workload against real daemons.
@Suite(.serialized) struct CommandTests {
    /// `vcpufreq bench workload ARGUMENTS`, through the benchmark's own child runner.
    static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        let quoted = ([builtExecutable(), "bench", "workload"] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let output = NSTemporaryDirectory() + "workload-cli-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = CommandBench.shell(
            quoted.joined(separator: " "), environment: ProcessInfo.processInfo.environment, output: output, timeout: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard case .exited(let code) = status else { return (-1, "\(status): \(text)") }
        return (code, text)
    }

    @Test func helpNamesTheModesAndOptions() {
        let (status, help) = Self.run(["--help"])
        #expect(status == 0)
        for option in ["--quick", "--rounds", "--contention", "--configurations", "--seconds", "--command", "--score-regex",
                       "--readme", "--from", "--kvm-device", "--daemon-args"]
        {
            #expect(help.contains(option), "help lists \(option)")
        }
        for words in ["Web Browsing", "crosvm-style", "vcpufreq-sched-ext", "sh -c", "status 69"] {
            #expect(help.contains(words), "help mentions \(words)")
        }
    }

    @Test(arguments: [
        ["--rounds", "0"], ["--contention", "extreme"], ["--configurations", "nonsense"], ["--score-regex", "x"],
        ["--command", "true"], ["--command", "true", "--score-regex", "(x"],
        ["--command", "true", "--score-regex", "x", "--configurations", "a:colour=red"],
    ])
    func badOptionsFailWithUsageBeforeAnythingStarts(arguments: [String]) {
        let (status, output) = Self.run(arguments + ["--out", "/nonexistent/out"])
        #expect(status == 64, "\(output)")
    }

    @Test func withoutUsableKVMGuestModeExitsWith69() {
        let (status, output) = Self.run(["--quick", "--kvm-device", "/nonexistent/kvm", "--out", "/nonexistent"])
        #expect(status == 69 && output.contains("KVM is not usable here"), "\(output)")
    }

    /// The command runs once per configuration and round; where the
    /// configuration has a daemon, a real one answers on VCPUFREQ_SOCKET
    /// (`vcpufreq status` asks it), with the configuration's settings.
    @Test func commandModeABTestsAShellWorkloadAgainstRealDaemons() throws {
        let vcpufreq = builtExecutable()
        let script = """
            if [ -n "$VCPUFREQ_SOCKET" ]; then
              status=$("\(vcpufreq)" status --socket "$VCPUFREQ_SOCKET" --json) || { echo "no daemon answered"; exit 1; }
              case "$status" in *latency=none*) echo "Score: 3,000" ;; *) echo "Score: 2000" ;; esac
            else
              echo "Score: 1000"
            fi
            echo "$VCPUFREQ_CONFIGURATION $VCPUFREQ_ROUND" >&2
            """
        var bench = try CommandBench(
            command: script, scoreRegex: "Score: ([0-9.,]+)",
            configurations: ["off:daemon=off", "on", "nolatency:latency=none,kick=never"], daemonExecutable: vcpufreq)
        bench.rounds = 2
        let results = try bench.run()
        #expect(results.mode == .command && results.tests.map(\.name) == ["command"])
        #expect(results.runs.count == 6 && results.runs.allSatisfy { $0.failure == nil })
        let row = results.tests[0]
        #expect(row.result("off")?.score == 1000)
        #expect(row.result("on")?.score == 2000, "a daemon answered, with latency hints")
        #expect(row.result("nolatency")?.score == 3000, "its daemon runs with --latency none")
        #expect(row.result("nolatency")?.deltaPercent == 200)
        #expect(results.configuration("nolatency")?.actuators?.contains("latency=none") == true)
        #expect(results.configuration("off")?.actuators == "none")
        #expect(results.runs.filter { $0.configuration != "off" }.allSatisfy { $0.cost.daemonSeconds >= 0 })
        // Rotated order: round 0 starts with "off", round 1 with "on".
        #expect(results.runs.map(\.configuration) == ["off", "on", "nolatency", "on", "nolatency", "off"])
    }

    @Test func aFailingOrSilentCommandIsRecordedNotFatal() throws {
        var bench = try CommandBench(
            command: "if [ \"$VCPUFREQ_ROUND\" = 0 ]; then exit 3; fi; echo no score", scoreRegex: "Score: ([0-9]+)",
            configurations: ["off:daemon=off"], daemonExecutable: builtExecutable())
        bench.rounds = 2
        let results = try bench.run()
        #expect(results.runs[0].failure?.contains("exited with status 3") == true)
        #expect(results.runs[1].failure?.contains("no match") == true)
        #expect(results.configuration("off")?.ran == false && results.tests[0].results[0].score == nil)
        var slow = try CommandBench(
            command: "sleep 30", scoreRegex: "x", configurations: ["off:daemon=off"], daemonExecutable: builtExecutable())
        slow.rounds = 1
        slow.timeout = .milliseconds(300)
        let started = ContinuousClock.now
        let timedOut = try slow.run()
        #expect(timedOut.runs[0].failure?.contains("did not finish") == true)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func kickNeedsTheGeneratedTopology() throws {
        var bench = try CommandBench(
            command: "true", scoreRegex: "x", configurations: ["a:kick=never"], daemonExecutable: builtExecutable())
        bench.topology = "/etc/hostname"
        let error = #expect(throws: WorkloadBenchError.self) { try bench.run() }
        #expect(error?.description.contains("with --topology, set kick_mode in that file") == true)
    }
}
