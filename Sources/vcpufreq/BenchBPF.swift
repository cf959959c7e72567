import ArgumentParser
import Foundation
import VCPUFreqBPF

/// `vcpufreq bench bpf`: the overhead of the attached BPF scheduler programs
/// on a context-switch-heavy workload, as a with / without ratio of one run.
struct BenchBPF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bpf",
        abstract: "Measure what the BPF scheduler programs cost a context-switch-heavy workload (ratio with / without).",
        discussion: """
            Times a two-thread ping-pong on one CPU with the programs detached, attached with the threads untracked \
            and attached with them tracked, interleaved, and writes bpf.md and bpf.json to --output. Needs root \
            (or CAP_BPF + CAP_PERFMON); build with -c release for numbers worth quoting. See bench/bpf.md.
            """
    )

    @Option(name: .customLong("round-trips"), help: "Round trips per timed run.")
    var roundTrips = 50_000

    @Option(help: "Runs of each mode.")
    var repetitions = 7

    @Option(help: "The CPU the ping-pong threads are pinned to.")
    var cpu = 0

    @Option(help: "Directory for bpf.md and bpf.json.")
    var output = "bench/results"

    func validate() throws {
        guard (1...10_000_000).contains(roundTrips) else { throw ValidationError("--round-trips must be within 1...10000000") }
        guard (1...1000).contains(repetitions) else { throw ValidationError("--repetitions must be within 1...1000") }
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        guard (0..<cpus).contains(cpu) else { throw ValidationError("--cpu must be within 0...\(cpus - 1)") }
    }

    func run() throws {
        var configuration = VCPUThreadMonitor.Configuration()
        configuration.utilHintPinPath = nil
        let comparison = ContextSwitchBenchmark.compare(
            roundTrips: roundTrips, repetitions: repetitions, cpu: cpu, configuration: configuration)
        guard comparison.monitorStatus.isRunning else {
            throw CLIError("the BPF programs could not be loaded, nothing to compare: \(comparison.monitorStatus.summary)")
        }
        #if DEBUG
            let build = "debug"
        #else
            let build = "release"
        #endif
        var system = utsname()
        uname(&system)
        let kernel = withUnsafeBytes(of: system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let report = BPFOverheadReport(
            comparison: comparison, roundTrips: roundTrips, repetitions: repetitions, cpu: cpu, kernel: kernel,
            onlineProcessors: ProcessInfo.processInfo.activeProcessorCount, build: build,
            date: ISO8601DateFormatter().string(from: Date()))
        let markdown = report.markdown()
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try Data(markdown.utf8).write(to: URL(fileURLWithPath: output + "/bpf.md"))
            try encoder.encode(report).write(to: URL(fileURLWithPath: output + "/bpf.json"))
        } catch {
            throw CLIError("cannot write the results to \(output): \(error)")
        }
        print(markdown, terminator: "")
        print("written: \(output)/bpf.md, \(output)/bpf.json")
    }
}
