import ArgumentParser
import Foundation
import VCPUFreqBench

/// `vcpufreq scheduler selftest`: the scheduler end to end on this kernel
/// (docs/scheduler.md, "Tests"); the sched_ext facet of scripts/test-kernels.
struct SchedulerSelftest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Test the sched_ext scheduler on this kernel, from the kernel's own state (for test machines and VMs).",
        discussion: """
            Starts daemons of this binary with and without --scheduler sched-ext, places hinted threads, runs a \
            latency-flagged thread against CPU hogs on every CPU, SIGKILLs a daemon, ejects the scheduler with \
            sysrq-S and loads it with `scheduler run`; asserts placement, latency, fairness and lifecycle from \
            schedstat, sched_getattr, the daemon's BPF host truth and /sys/kernel/sched_ext. Prints one line per \
            check; --json writes the report. Exit status 0 when verified or absent (no sched_ext: the daemon must \
            then run on and say why), 1 when a check failed. Not for production hosts: it disturbs every task.
            """
    )

    @Option(help: "Write the report (facet, verdict, checks, measurements) as JSON to this file.")
    var json: String?

    @Option(help: "Seconds per measured window.")
    var seconds = 2.0

    @Option(name: .customLong("hogs-per-cpu"), help: "CPU hogs pinned to each CPU in the latency runs.")
    var hogsPerCPU = 2

    func validate() throws {
        guard (0.2...600).contains(seconds) else { throw ValidationError("--seconds must be within 0.2...600") }
        guard (1...16).contains(hogsPerCPU) else { throw ValidationError("--hogs-per-cpu must be within 1...16") }
    }

    func run() throws {
        var options = SchedSelftest.Options(executable: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        options.seconds = seconds
        options.hogsPerCPU = hogsPerCPU
        var selftest = SchedSelftest(options: options) { print($0) }
        let report = selftest.run()
        print("sched_ext: \(report.verdict.rawValue)\(report.reason.map { " (\($0))" } ?? "")")
        if let json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            do { try encoder.encode(report).write(to: URL(fileURLWithPath: json)) } catch {
                throw CLIError("cannot write \(json): \(error)")
            }
        }
        if report.verdict == .failed { throw ExitCode.failure }
    }
}
